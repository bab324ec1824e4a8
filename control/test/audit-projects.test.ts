// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { Migrator, SqlClient } from "effect/sql"
import { createHash } from "node:crypto"
import { migrations } from "../src/Migrations.ts"
import { bypassingTriggers, runSql } from "./AuditDb.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { call, type ControlHandle, postgresBackend, script, startControl, TestDatabase } from "./harness.ts"

const keyIn = (control: ControlHandle, project: string, scopes: Array<string>) =>
  Effect.map(call(control, "POST", "/v1/keys", { body: { name: `${project} ${scopes}`, scopes, project } }), (r) => {
    assert.strictEqual(r.status, 201, r.text)
    return { secret: r.body.secret as string, id: r.body.key.id as string }
  })

/** Polls a session with a key of its project (the instance admin does not see it) until it completes. */
const completed = (control: ControlHandle, id: string, key: string) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while ((yield* call(control, "GET", `/v1/sessions/${id}`, { key })).body.status !== "completed") {
      assert.isBelow(Date.now(), deadline, `session ${id} did not complete`)
      yield* Effect.sleep(25)
    }
  })

const rows = (control: ControlHandle, key: string | undefined, query = "") =>
  Effect.map(call(control, "GET", `/v1/audit?limit=1000${query}`, key === undefined ? {} : { key }), (r) => {
    assert.strictEqual(r.status, 200, r.text)
    return r.body.entries as Array<any>
  })

const verify = (control: ControlHandle, key?: string) =>
  Effect.map(call(control, "GET", "/v1/audit/verify", key === undefined ? {} : { key }), (r) => r.body)

describe("audit rows belong to projects", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect(
      "a project's key reads only its project's rows (others named: 404), the instance admin all or one; verify " +
        "checks the whole chain, and moving a row to another project breaks it",
      () =>
        Effect.scoped(Effect.gen(function* () {
          const store = yield* (yield* TestDatabase).fresh
          const control = yield* startControl(store)
          yield* registerFakeNode(control.registry, { id: "n-audit-projects", maxConcurrent: 2 })
          for (const id of ["alpha", "beta"]) yield* call(control, "POST", "/v1/projects", { body: { id } })
          const alphaAdmin = yield* keyIn(control, "alpha", ["admin"])
          const alphaWriter = yield* keyIn(control, "alpha", ["sessions:write"])
          const betaAdmin = yield* keyIn(control, "beta", ["admin"])
          const betaWriter = yield* keyIn(control, "beta", ["sessions:write"])
          const aSession = (yield* call(control, "POST", "/v1/sessions", {
            key: alphaWriter.secret,
            body: script("echo a"),
          })).body.sessionId
          const bSession = (yield* call(control, "POST", "/v1/sessions", {
            key: betaWriter.secret,
            body: script("echo b"),
          })).body.sessionId
          // The system's own rows about a session (its status as it runs, its node's egress decisions) are the
          // session's project's.
          yield* completed(control, aSession, alphaWriter.secret)
          yield* completed(control, bSession, betaWriter.secret)

          const alpha = yield* rows(control, alphaAdmin.secret)
          assert.isAbove(alpha.length, 0)
          assert.deepStrictEqual([...new Set(alpha.map((e) => e.project))], ["alpha"])
          const alphaActions = alpha.map((e) => `${e.action} ${e.target}`)
          assert.include(alphaActions, "api.sessions.create /v1/sessions")
          assert.include(alphaActions, `session.status ${aSession}`)
          const system = alpha.filter((e) => e.actor !== `key:${alphaWriter.id}` && e.session === aSession)
          assert.includeMembers(system.map((e) => `${e.action} ${e.result}`), [
            "session.status starting",
            "session.status completed",
          ])
          assert.isTrue(alpha.some((e) => e.action === "egress" && e.actor === "node:n-audit-projects"))
          assert.notInclude(JSON.stringify(alpha), bSession)
          const beta = yield* rows(control, betaAdmin.secret)
          assert.deepStrictEqual([...new Set(beta.map((e) => e.project))], ["beta"])
          assert.include(beta.map((e) => `${e.action} ${e.result}`), "session.status completed")
          // A project's key may name its own project, not another's.
          assert.deepStrictEqual(yield* rows(control, alphaAdmin.secret, "&project=alpha"), alpha)
          const other = yield* call(control, "GET", "/v1/audit?project=beta", { key: alphaAdmin.secret })
          assert.strictEqual(other.status, 404, other.text)
          assert.strictEqual(other.body._tag, "ProjectNotFound")
          const badProject = yield* call(control, "GET", "/v1/audit?project=Not%20One")
          assert.strictEqual(badProject.status, 400)
          assert.include(badProject.text, "project")

          // The instance admin: every project's rows, or one project's.
          const all = yield* rows(control, undefined)
          assert.includeMembers([...new Set(all.map((e) => e.project))], ["default", "alpha", "beta"])
          assert.deepStrictEqual(
            (yield* rows(control, undefined, "&project=beta")).map((e) => e.id),
            beta.map((e) => e.id),
          )
          // Creating the project keys was the instance admin's call: its rows are `default`'s.
          assert.isTrue(all.some((e) => e.action === "api.keys.create" && e.project === "default"))

          const intact = yield* verify(control, alphaAdmin.secret)
          assert.strictEqual(intact.ok, true, JSON.stringify(intact))
          assert.strictEqual(intact.checked, (yield* verify(control)).checked, "a project's verify is the whole chain")

          // Move one of beta's rows into alpha, as someone with database access could: the chain breaks there.
          const moved = beta[0].id as number
          const edit = yield* runSql(
            store,
            bypassingTriggers([`UPDATE audit SET project = 'alpha' WHERE id = ${moved}`]),
          )
          assert.isUndefined(edit.error)
          const byAdmin = yield* verify(control)
          assert.strictEqual(byAdmin.ok, false)
          assert.strictEqual(byAdmin.firstBroken.id, moved)
          assert.include(byAdmin.firstBroken.reason, "edited")
          // Now in alpha's view, it is named there in full; beta's key learns only which row (no longer its own).
          const byAlpha = yield* verify(control, alphaAdmin.secret)
          assert.deepStrictEqual(byAlpha.firstBroken, byAdmin.firstBroken)
          const byBeta = yield* verify(control, betaAdmin.secret)
          assert.strictEqual(byBeta.ok, false)
          assert.strictEqual(byBeta.firstBroken.id, moved)
          assert.include(byBeta.firstBroken.reason, "outside project beta")
        })),
    )

    it.effect("migration 0020 files the rows written before it under `default`; their hashes still verify", () =>
      Effect.scoped(Effect.gen(function* () {
        const store = yield* (yield* TestDatabase).fresh
        const before = migrations.pipe(Effect.map((all) => all.filter(([id]) => id < 20)))
        // Two rows chained as control wrote them before projects: sha256(previous, [9 fields]).
        const time = "2026-12-01T10:00:00.000Z"
        const old = (id: number, prev: string) => {
          const content = [id, time, "system", "test.old", `t${id}`, "ok", null, null, {}]
          return createHash("sha256").update(prev).update("\n").update(JSON.stringify(content)).digest("hex")
        }
        const h1 = old(1, "")
        const h2 = old(2, h1)
        yield* Effect.scoped(Effect.gen(function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
          yield* Migrator.make({})({ loader: before, table: "paws_migrations" }).pipe(
            Effect.provideService(SqlClient.SqlClient, sql),
          )
          yield* sql`INSERT INTO audit (id, time, actor, action, target, result, detail, hash) VALUES
            (1, ${time}, 'system', 'test.old', 't1', 'ok', '{}'::jsonb, ${h1}),
            (2, ${time}, 'system', 'test.old', 't2', 'ok', '{}'::jsonb, ${h2})`
        })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

        const control = yield* startControl(store)
        const first = (yield* rows(control, undefined)).slice(0, 2)
        assert.deepStrictEqual(first.map((e) => [e.id, e.project, e.hash]), [[1, "default", h1], [2, "default", h2]])
        yield* call(control, "POST", "/v1/projects", { body: { id: "later" } })
        const check = yield* verify(control)
        assert.strictEqual(check.ok, true, JSON.stringify(check))
        assert.isAbove(check.checked, 2)
      })))
  })
})
