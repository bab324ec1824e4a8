// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { join } from "node:path"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, readEvents, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

const cap = 300
const flood = 4000

/** Stored event rows per session and kind, read straight from the database (after control stopped). */
const countRows = (store: { dataDir: string; databaseUrl: string | undefined }) => {
  const query = `SELECT session_id::text AS id, event->>'_tag' AS tag, count(*)::int AS n
    FROM session_events GROUP BY 1, 2`
  const tally = (rows: ReadonlyArray<any>) => {
    const out: Record<string, Record<string, number>> = {}
    for (const r of rows) (out[r.id] ??= {})[r.tag] = Number(r.n)
    return out
  }
  return store.databaseUrl === undefined
    ? Effect.promise(async () => {
      const db = await PGlite.create(join(store.dataDir, "pgdata"))
      const rows = await db.query(query)
      await db.close()
      return tally(rows.rows)
    })
    : Effect.scoped(Effect.gen(function* () {
      const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
      return tally(yield* sql.unsafe(query))
    })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
}

for (const backend of backends) {
  describe(`audit rows per session (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 120_000 })((it) => {
      it.effect(
        `a node that streams ${flood} audit events for one session leaves at most ${cap} audit rows and a final count`,
        () =>
          Effect.gen(function* () {
            const db = yield* TestDatabase
            const store = yield* db.fresh
            const ids = yield* Effect.scoped(Effect.gen(function* () {
              const control = yield* startControl(store, { PAWS_MAX_AUDIT_ROWS: String(cap) })
              yield* registerFakeNode(control.registry, { id: "n-flood", maxConcurrent: 2 })
              const flooded = yield* call(control, "POST", "/v1/sessions", { body: script(`auditflood ${flood}`) })
              const quiet = yield* call(control, "POST", "/v1/sessions", { body: script("auditflood 20") })
              const id: string = flooded.body.sessionId
              const done = yield* waitForSession(control, id, (s) => s.status === "completed", 60_000)
              assert.strictEqual(done.result.exitCode, 0)
              yield* waitForSession(control, quiet.body.sessionId, (s) => s.status === "completed")

              const sse = yield* readEvents(control, id)
              const audits = sse.frames.filter((f) => f.event === "audit")
              assert.strictEqual(audits.length, cap + 1)
              const marker = audits.at(-1)!.data.event
              assert.strictEqual(marker.decision, "audit_dropped")
              assert.strictEqual(marker.count, flood - cap)
              assert.include(marker.reason, `${flood - cap} audit events dropped after the cap of ${cap}`)
              assert.isString(marker.time)
              // Stored in arrival order: the first `cap` of them, then the count, then the end.
              assert.deepStrictEqual(audits.slice(0, 3).map((f) => f.data.event.host), [
                "n0.flood.test",
                "n1.flood.test",
                "n2.flood.test",
              ])
              assert.deepStrictEqual(sse.frames.slice(-3).map((f) => f.event), ["result", "audit", "status"])
              assert.strictEqual(sse.frames.at(-1)!.data.status, "completed")
              return { flooded: id, quiet: quiet.body.sessionId as string }
            }))

            // Measured in the database itself, after control stopped.
            const rows = yield* countRows(store)
            assert.deepStrictEqual(rows[ids.flooded], { status: 4, audit: cap + 1, result: 1 })
            assert.deepStrictEqual(
              rows[ids.quiet],
              { status: 4, audit: 20, result: 1 },
              "under the cap: all, no marker",
            )
          }),
        120_000,
      )
    })
  })
}
