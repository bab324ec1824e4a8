import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { migrations } from "../src/Migrations.ts"
import { call, postgresBackend, startControl, TestDatabase } from "./harness.ts"

/** Runs one statement on the control's PostgreSQL database beside it. */
const onDatabase = (url: string, query: string) =>
  Effect.scoped(Effect.gen(function* () {
    const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
    yield* sql.unsafe(query)
  })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

describe("readiness (postgres)", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("ready only while the database holds this build's newest migration", () =>
      Effect.gen(function* () {
        const store = yield* (yield* TestDatabase).fresh
        const control = yield* startControl(store)
        const url = store.databaseUrl!
        assert.deepStrictEqual((yield* call(control, "GET", "/readyz", { key: null })).body, { status: "ok" })
        const newest = Math.max(...(yield* migrations).map(([id]) => id))
        // As if another replica's rollback (or a restored backup) left the schema behind this build.
        yield* onDatabase(url, `DELETE FROM paws_migrations WHERE migration_id = ${newest}`)
        const behind = yield* call(control, "GET", "/readyz", { key: null })
        assert.strictEqual(behind.status, 503)
        assert.include(JSON.stringify(behind.body), `database lacks migration ${newest}`)
        assert.strictEqual((yield* call(control, "GET", "/healthz", { key: null })).status, 200)
        yield* onDatabase(url, `INSERT INTO paws_migrations (migration_id, name) VALUES (${newest}, 'back')`)
        assert.strictEqual((yield* call(control, "GET", "/readyz", { key: null })).status, 200)
      }).pipe(Effect.scoped))
  })
})
