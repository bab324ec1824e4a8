// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { chainHash } from "../src/audit/AuditChain.ts"
import { iso, json } from "../src/Rows.ts"
import { bypassingTriggers, runSql } from "./AuditDb.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

const keyIdOf = (secret: string) => secret.split("_")[1]!

/** Every audit row, through the API, following nextCursor (small pages, so paging is exercised). */
const allRows = (control: ControlHandle, query = "") =>
  Effect.gen(function* () {
    const rows: Array<any> = []
    let cursor = ""
    while (true) {
      const reply = yield* call(control, "GET", `/v1/audit?limit=7${query}${cursor}`)
      assert.strictEqual(reply.status, 200, reply.text)
      rows.push(...reply.body.entries)
      if (!reply.body.more) return rows
      cursor = `&cursor=${reply.body.nextCursor}`
    }
  })

const verify = (control: ControlHandle) =>
  Effect.map(call(control, "GET", "/v1/audit/verify"), (r) => {
    assert.strictEqual(r.status, 200, r.text)
    return r.body
  })

for (const backend of backends) {
  describe(`audit log (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 180_000 })((it) => {
      it.effect("records API calls, key changes, session status changes and egress decisions, chained", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const store = yield* db.fresh
          yield* Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(store, { PAWS_MAX_AUDIT_ROWS: "5" })
            const admin = `key:${keyIdOf(control.adminKey)}`
            yield* registerFakeNode(control.registry, { id: "n-audit", maxConcurrent: 2 })

            const created = yield* call(control, "POST", "/v1/keys", { body: { name: "reader", scopes: ["read"] } })
            assert.strictEqual(created.status, 201)
            const readerId = created.body.key.id
            assert.strictEqual((yield* call(control, "DELETE", `/v1/keys/${readerId}`)).status, 200)
            const missing = yield* call(control, "DELETE", "/v1/keys/aaaaaaaaaaaa")
            assert.strictEqual(missing.status, 404)

            const run = yield* call(control, "POST", "/v1/sessions", { body: script("echo hi") })
            const flood = yield* call(control, "POST", "/v1/sessions", { body: script("auditflood 12") })
            yield* waitForSession(control, run.body.sessionId, (s) => s.status === "completed")
            yield* waitForSession(control, flood.body.sessionId, (s) => s.status === "completed")
            const late = yield* call(control, "DELETE", `/v1/sessions/${run.body.sessionId}`)
            assert.strictEqual(late.status, 409)

            const rows = yield* allRows(control)
            assert.deepStrictEqual(rows.map((r) => r.id), rows.map((_, i) => i + 1), "ids are dense from 1")
            // The first admin key, made at bootstrap by control itself.
            assert.deepInclude(rows[0], { actor: "system", action: "apikey.created", result: "ok" })

            const keyRows = rows.filter((r) => r.action.startsWith("apikey.") && r.target === readerId)
            assert.deepStrictEqual(
              keyRows.map((r) => [r.actor, r.action, r.detail.name]),
              [[admin, "apikey.created", "reader"], [admin, "apikey.revoked", "reader"]],
            )
            assert.deepStrictEqual(keyRows[0].detail.scopes, ["read"])
            assert.notInclude(
              JSON.stringify(rows),
              (created.body.secret as string).slice("paws_".length + 13),
              "never a secret",
            )

            const api = rows.filter((r) => r.action.startsWith("api."))
            assert.deepStrictEqual(
              api.map((r) => [r.actor, r.action, r.target, r.result]),
              [
                [admin, "api.keys.create", "/v1/keys", "ok"],
                [admin, "api.keys.revoke", `/v1/keys/${readerId}`, "ok"],
                [admin, "api.keys.revoke", "/v1/keys/aaaaaaaaaaaa", "ApiKeyNotFound"],
                [admin, "api.sessions.create", "/v1/sessions", "ok"],
                [admin, "api.sessions.create", "/v1/sessions", "ok"],
                [admin, "api.sessions.cancel", `/v1/sessions/${run.body.sessionId}`, "IllegalTransition"],
              ],
              "mutating calls only: the GETs of this test are not here",
            )

            const session = yield* allRows(control, `&session=${run.body.sessionId}`)
            assert.deepStrictEqual(
              session.filter((r) => r.action === "session.status").map((r) => [r.actor, r.result]),
              [[admin, "pending"], ["system", "starting"], ["system", "running"], ["system", "completed"]],
            )
            assert.deepStrictEqual(
              session.filter((r) => r.action.startsWith("api.")).map((r) => [r.action, r.result]),
              [["api.sessions.cancel", "IllegalTransition"]],
              "a call on the session's own path is filed under it",
            )
            const egress = session.filter((r) => r.action === "egress")
            assert.deepStrictEqual(egress.map((r) => [r.actor, r.target, r.result, r.detail]), [[
              "node:n-audit",
              "api.example.com",
              "allowed",
              { time: egress[0]?.detail.time, method: "GET", status: 200, injected: ["x-api-key"] },
            ]])

            // PAWS_MAX_AUDIT_ROWS holds for the audit log too: 5 decisions, then one row counting the rest.
            const flooded = yield* allRows(control, `&session=${flood.body.sessionId}&action=egress`)
            assert.deepStrictEqual(flooded.map((r) => r.result), [...Array(5).fill("dns_refused"), "audit_dropped"])
            assert.strictEqual(flooded.at(-1).detail.count, 7)

            // Filters: action prefix, actor, time window.
            const prefixed = yield* allRows(control, "&action=apikey.*")
            assert.deepStrictEqual(prefixed.map((r) => r.action), [
              "apikey.created",
              "apikey.created",
              "apikey.revoked",
            ])
            const byNode = yield* allRows(control, "&actor=node:n-audit")
            assert.isTrue(byNode.length === 6 && byNode.every((r) => r.action === "egress"))
            const future = yield* allRows(control, "&since=2999-01-01T00:00:00Z")
            assert.strictEqual(future.length, 0)
            const past = yield* allRows(control, `&until=${encodeURIComponent(rows[0].time)}`)
            assert.strictEqual(past.length, 0, "until is exclusive")

            const check = yield* verify(control)
            assert.deepStrictEqual(check, {
              ok: true,
              checked: check.checked,
              from: null,
              head: check.head,
              signedThrough: check.signedThrough,
              firstBroken: null,
            })
            assert.isAtLeast(check.checked, rows.length)

            // Following: the last nextCursor yields nothing, then only what is written after it.
            const end = yield* call(control, "GET", `/v1/audit?limit=1000`)
            const tail = end.body.nextCursor
            const empty = yield* call(control, "GET", `/v1/audit?cursor=${tail}`)
            assert.deepStrictEqual([empty.body.entries, empty.body.nextCursor], [[], tail])
            yield* call(control, "POST", "/v1/keys", { body: { name: "later", scopes: ["read"] } })
            const next = yield* call(control, "GET", `/v1/audit?cursor=${tail}`)
            assert.deepStrictEqual(next.body.entries.map((r: any) => r.action), ["apikey.created", "api.keys.create"])
          }))
        }))

      it.effect("bad queries are 400s naming the field; the log is admin-only", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          yield* Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(yield* db.fresh)
            for (
              const [query, field] of [
                ["cursor=nope!", "query.cursor"],
                ["cursor=YTotMQ", "query.cursor"], // base64url of "a:-1"
                ["since=yesterday", "query.since"],
                ["until=2026-13-45T00:00:00Z", "query.until"],
                ["limit=0", "query.limit"],
                ["session=not-a-uuid", "query.session"],
                ["colour=red", "query"],
              ] as const
            ) {
              const reply = yield* call(control, "GET", `/v1/audit?${query}`)
              assert.strictEqual(reply.status, 400, `${query}: ${reply.text}`)
              assert.include(reply.text, field, query)
            }
            const reader = yield* call(control, "POST", "/v1/keys", { body: { name: "r", scopes: ["sessions:write"] } })
            for (const path of ["/v1/audit", "/v1/audit/verify"]) {
              const refused = yield* call(control, "GET", path, { key: reader.body.secret })
              assert.strictEqual(refused.status, 403)
            }
            // A refused mutating call is itself recorded, with the key that tried.
            const tried = yield* call(control, "POST", "/v1/keys", {
              key: reader.body.secret,
              body: { name: "x", scopes: ["admin"] },
            })
            assert.strictEqual(tried.status, 403)
            const rows = yield* allRows(control, `&actor=key:${reader.body.key.id as string}`)
            assert.deepStrictEqual(rows.map((r) => [r.action, r.result]), [["api.keys.create", "Forbidden"]])
          }))
        }))

      it.effect("the table refuses UPDATE and DELETE; an edited row or a deleted one is named by verify", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const store = yield* db.fresh
          const writeSome = Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(store)
            for (let i = 0; i < 6; i++) {
              yield* call(control, "POST", "/v1/keys", { body: { name: `k${i}`, scopes: ["read"] } })
            }
            assert.isTrue((yield* verify(control)).ok)
          }))
          const verifyNow = Effect.scoped(Effect.flatMap(startControl(store), verify))
          yield* writeSome

          const update = yield* runSql(store, ["UPDATE audit SET result = 'forged' WHERE id = 5"])
          assert.include(update.error, "append-only")
          const remove = yield* runSql(store, ["DELETE FROM audit WHERE id = 5"])
          assert.include(remove.error, "append-only")
          const truncate = yield* runSql(store, ["TRUNCATE audit"])
          assert.include(truncate.error, "append-only")

          // Someone with the database's superuser edits row 5: verify names row 5.
          yield* runSql(store, bypassingTriggers([`UPDATE audit SET detail = '{"name":"k9"}' WHERE id = 5`]))
          const edited = yield* verifyNow
          assert.strictEqual(edited.ok, false)
          assert.deepStrictEqual(edited.firstBroken.id, 5)
          assert.include(edited.firstBroken.reason, "edited")
          assert.strictEqual(edited.checked, 4)

          // ... and deletes it instead: verify names the row after it.
          yield* runSql(store, bypassingTriggers(["DELETE FROM audit WHERE id = 5"]))
          const deleted = yield* verifyNow
          assert.deepStrictEqual(deleted.firstBroken, {
            id: 6,
            kind: "row",
            reason: "the chain expects row 5 here: rows 5..5 were deleted",
          })
        }))

      it.effect("retention prunes old rows behind a signed checkpoint that verify starts from and checks", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const store = yield* db.fresh
          const before = yield* Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(store, { PAWS_AUDIT_CHECKPOINT_INTERVAL_MS: "100" })
            for (let i = 0; i < 4; i++) {
              yield* call(control, "POST", "/v1/keys", { body: { name: `k${i}`, scopes: ["read"] } })
            }
            let check = yield* verify(control)
            while (check.signedThrough !== check.head.id) {
              check = yield* Effect.andThen(Effect.sleep(50), verify(control))
            }
            return check
          }))
          assert.isTrue(before.ok)

          // A restart with a 1 ms retention prunes everything written so far, once at start.
          const after = yield* Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(store, { PAWS_AUDIT_RETENTION_MS: "1" })
            let check = yield* verify(control)
            while (check.from === null) check = yield* Effect.andThen(Effect.sleep(50), verify(control))
            const pruned = yield* allRows(control, "&action=audit.pruned")
            assert.strictEqual(pruned.length, 1)
            assert.strictEqual(pruned[0].detail.throughId, check.from.throughId)
            return check
          }))
          assert.isTrue(after.ok, JSON.stringify(after))
          const anchors = yield* runSql(store, [
            `SELECT count(*)::int AS n FROM audit_checkpoints WHERE NOT pruned AND through_id <= ${after.from.throughId}`,
          ])
          assert.strictEqual(Number(anchors.rows[0].n), 0, "the prune dropped the anchors of what it pruned")
          assert.isAtLeast(after.from.throughId, before.head.id)
          assert.strictEqual(after.from.throughId >= before.head.id && after.from.hash.length, 64)

          // Checkpoints are append-only too; a forged one (say, to hide a pruned-away gap) fails verify.
          const edit = yield* runSql(store, ["UPDATE audit_checkpoints SET hash = repeat('0', 64)"])
          assert.include(edit.error, "append-only")
          yield* runSql(store, bypassingTriggers(["UPDATE audit_checkpoints SET hash = repeat('0', 64)"]))
          const forged = yield* Effect.scoped(Effect.flatMap(startControl(store), verify))
          assert.strictEqual(forged.ok, false)
          assert.strictEqual(forged.firstBroken.kind, "checkpoint")
          assert.strictEqual(forged.firstBroken.id, after.from.throughId)

          // Without the checkpoint, the remaining rows no longer start the chain.
          yield* runSql(store, bypassingTriggers(["DELETE FROM audit_checkpoints"]))
          const headless = yield* Effect.scoped(Effect.flatMap(startControl(store), verify))
          assert.strictEqual(headless.ok, false)
          assert.strictEqual(headless.firstBroken.kind, "row")
          assert.include(headless.firstBroken.reason, "the chain expects row 1 here")
        }))
    })
  })
}

/** Restarts control until its start-up checkpoint has signed the chain's head; that head. */
const signHead = (store: { dataDir: string; databaseUrl: string | undefined }) =>
  Effect.scoped(Effect.gen(function* () {
    const control = yield* startControl(store)
    for (let i = 0; i < 6; i++) yield* call(control, "POST", "/v1/keys", { body: { name: `k${i}`, scopes: ["read"] } })
  })).pipe(
    Effect.andThen(Effect.scoped(Effect.gen(function* () {
      const control = yield* startControl(store)
      let check = yield* verify(control)
      while (check.signedThrough !== check.head.id) check = yield* Effect.andThen(Effect.sleep(50), verify(control))
      assert.isTrue(check.ok)
      return check.head.id as number
    }))),
  )

for (const backend of backends) {
  describe(`audit log: signed heads (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 180_000 })((it) => {
      it.effect("a chain recomputed after an edit fails at the signed head; one cut short, where rows are gone", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const verifyNow = (store: { dataDir: string; databaseUrl: string | undefined }) =>
            Effect.scoped(Effect.flatMap(startControl(store), verify))

          // Edit row 3 and recompute every hash after it, as someone with the database but not the vault key could.
          const rewritten = yield* db.fresh
          const head = yield* signHead(rewritten)
          const { rows } = yield* runSql(rewritten, ["SELECT * FROM audit ORDER BY id"])
          let previous = String(rows[1].hash)
          const updates = rows.slice(2).map((r: any) => {
            const id = Number(r.id)
            const detail = id === 3 ? { name: "innocent" } : json(r.detail) as Record<string, unknown>
            previous = chainHash(previous, {
              id,
              time: iso(r.time)!,
              actor: r.actor,
              action: r.action,
              target: r.target,
              result: r.result,
              session: r.session,
              daemon: r.daemon,
              detail,
              project: r.project,
            })
            return `UPDATE audit SET detail = '${JSON.stringify(detail)}', hash = '${previous}' WHERE id = ${id}`
          })
          yield* runSql(rewritten, bypassingTriggers(updates))
          const check = yield* verifyNow(rewritten)
          assert.strictEqual(check.ok, false)
          assert.strictEqual(check.firstBroken.id, head)
          assert.include(check.firstBroken.reason, "the chain was rewritten up to here")

          // Cut the last two rows off: verify names the first missing one.
          const truncated = yield* db.fresh
          const end = yield* signHead(truncated)
          yield* runSql(truncated, bypassingTriggers([`DELETE FROM audit WHERE id >= ${end - 1}`]))
          const cut = yield* verifyNow(truncated)
          assert.deepStrictEqual(cut.firstBroken, {
            id: end - 1,
            kind: "row",
            reason: `rows ${end - 1}..${end} were signed in a checkpoint but are gone: the log was truncated`,
          })
        }))
    })
  })
}
