// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { Migrator, SqlClient } from "effect/sql"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { newBearer } from "../src/BearerSecrets.ts"
import { migrations } from "../src/Migrations.ts"
import { call, postgresBackend, startControl, TestDatabase } from "./harness.ts"

describe("migration 0008_projects on a database that already has keys and sessions", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("existing keys and sessions move into `default`, where their owners still see them", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        // The schema as it was before projects, with a session in it.
        const before = migrations.pipe(Effect.map((all) => all.filter(([id]) => id < 8)))
        const sessionId = "0190a0f4-0000-7000-8000-00000000abcd"
        const admin = newBearer("paws")
        const writer = newBearer("paws")
        yield* Effect.scoped(Effect.gen(function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
          yield* Migrator.make({})({ loader: before, table: "paws_migrations" }).pipe(
            Effect.provideService(SqlClient.SqlClient, sql),
          )
          yield* sql`INSERT INTO api_keys (id, name, scopes, secret_hash)
            VALUES (${admin.id}, 'old admin', 'admin', ${admin.secretHash}),
              (${writer.id}, 'old writer', 'sessions:write', ${writer.secretHash})`
          yield* sql`INSERT INTO sessions (id, status, spec, key_id)
            VALUES (${sessionId}, 'pending', ${
            JSON.stringify({
              snapshot: "default",
              workload: { type: "script", script: "echo old" },
              resources: { vcpus: 1, memoryMB: 256 },
              timeoutMs: 60_000,
              network: { allowOut: [] },
            })
          }::jsonb, ${writer.id})`
        })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

        // Keys exist, so no admin key is created at start: the old one is the way in.
        writeFileSync(join(store.dataDir, "admin.key"), admin.bearer + "\n", { mode: 0o600 })
        const control = yield* startControl(store)
        const old = yield* call(control, "GET", `/v1/sessions/${sessionId}`, { key: writer.bearer })
        assert.strictEqual(old.status, 200, old.text)
        assert.strictEqual(old.body.project, "default")
        const keys = yield* call(control, "GET", "/v1/keys")
        assert.sameMembers(keys.body.map((k: any) => k.id), [admin.id, writer.id])
        assert.deepStrictEqual(keys.body.map((k: any) => k.project), ["default", "default"])
        const cancelled = yield* call(control, "DELETE", `/v1/sessions/${sessionId}`, { key: writer.bearer })
        assert.strictEqual(cancelled.body.status, "cancelled", "the old key still acts on its old session")
        yield* call(control, "POST", "/v1/projects", { body: { id: "newcomer" } })
        const other = yield* call(control, "POST", "/v1/keys", {
          body: { name: "n", scopes: ["read"], project: "newcomer" },
        })
        const hidden = yield* call(control, "GET", `/v1/sessions/${sessionId}`, { key: other.body.secret })
        assert.strictEqual(hidden.status, 404)
      }))
  })
})
