// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { Reactivity } from "effect/reactivity"
import { join } from "node:path"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

const secret = "sk-restart-4f1d9a-secret"

/** Every stored session and event row as text, read straight from the database. */
const dumpRows = (store: { dataDir: string; databaseUrl: string | undefined }) =>
  store.databaseUrl === undefined
    ? Effect.promise(async () => {
      const db = await PGlite.create(join(store.dataDir, "pgdata"))
      const rows = await db.query(
        "SELECT s.*, e.event FROM sessions s LEFT JOIN session_events e ON e.session_id = s.id",
      )
      await db.close()
      return JSON.stringify(rows.rows)
    })
    : Effect.scoped(Effect.gen(function* () {
      const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
      const rows = yield* sql`SELECT s.*, e.event FROM sessions s LEFT JOIN session_events e ON e.session_id = s.id`
      return JSON.stringify(rows)
    })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

for (const backend of backends) {
  describe(`control restart (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 120_000 })((it) => {
      it.effect("loses nothing: the queue survives, claimed sessions are re-queued, credentials stay sealed", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const store = yield* db.fresh
          const ids: Array<string> = []
          const creds = {
            network: {
              allowOut: ["api.example.com"],
              credentials: { "api.example.com": { headers: { "x-api-key": secret } } },
            },
          }

          // The same replica id both times, as a restarted replica has (its host and port).
          yield* Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(store, { PAWS_REPLICA_ID: "restarting" })
            yield* registerFakeNode(control.registry, { id: "n-before", maxConcurrent: 2, stallOn: "stalls" })
            const post = (text: string) =>
              Effect.map(call(control, "POST", "/v1/sessions", { body: script(text, creds) }), (r) => r.body.sessionId)
            ids.push(yield* post("stalls before running"))
            yield* waitForSession(control, ids[0]!, (s) => s.status === "starting")
            ids.push(yield* post("hang"))
            yield* waitForSession(control, ids[1]!, (s) => s.status === "running")
            for (let i = 0; i < 3; i++) ids.push(yield* post(`queued ${i}`))
            const pending = yield* call(control, "GET", "/v1/sessions?status=pending")
            assert.sameMembers(pending.body.sessions.map((s: any) => s.id), ids.slice(2))
          }))

          const rows = yield* dumpRows(store)
          assert.include(rows, "x-api-key", "header names are stored")
          assert.notInclude(rows, secret, "no credential value in any session or event row")

          yield* Effect.scoped(Effect.gen(function* () {
            // Its fake node is gone with the first process: nothing to wait for (PAWS_ADOPT_GRACE_MS).
            const control = yield* startControl(store, { PAWS_REPLICA_ID: "restarting", PAWS_ADOPT_GRACE_MS: "0" })
            const restarted = yield* waitForSession(control, ids[1]!, (s) => s.status !== "running")
            assert.strictEqual(restarted.status, "failed")
            assert.strictEqual(restarted.reason, "control_restarted")
            const node = yield* registerFakeNode(control.registry, { id: "n-after", maxConcurrent: 1 })
            for (const id of [ids[0]!, ...ids.slice(2)]) {
              yield* waitForSession(control, id, (s) => s.status === "completed")
            }
            assert.deepStrictEqual(node.dispatched.map((d) => d.sessionId), [ids[0], ...ids.slice(2)])
            assert.deepStrictEqual(node.dispatched[0]!.network.credentials, {
              "api.example.com": { headers: { "x-api-key": secret } },
            })
            const keys = yield* call(control, "GET", "/v1/keys")
            assert.strictEqual(keys.body.length, 1, "no second admin key on restart")
          }))

          // A replica with another vault key could not open these credentials: it must not start.
          const wrongKey = yield* Effect.exit(
            Effect.scoped(startControl(store, { PAWS_VAULT_KEY: randomBytes(32).toString("base64") })),
          )
          assert.isTrue(Exit.isFailure(wrongKey))
          assert.include(Exit.isFailure(wrongKey) ? Cause.pretty(wrongKey.cause) : "", "vault key differs")
        }))
    })
  })
}
