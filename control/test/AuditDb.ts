// deno-lint-ignore-file no-explicit-any -- tests read loosely typed rows
import { PGlite } from "@electric-sql/pglite"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { join } from "node:path"

/**
 * Runs statements straight against a test control plane's database, as a person with database
 * access would (PGlite only while control is stopped: one process owns its data dir). The
 * result of the last statement, or the error message when one fails.
 */
export const runSql = (
  store: { readonly dataDir: string; readonly databaseUrl: string | undefined },
  statements: ReadonlyArray<string>,
): Effect.Effect<{ readonly rows: ReadonlyArray<any>; readonly error: string | undefined }> =>
  store.databaseUrl === undefined
    ? Effect.promise(async () => {
      const db = await PGlite.create(join(store.dataDir, "pgdata"))
      try {
        let rows: ReadonlyArray<any> = []
        for (const s of statements) rows = (await db.query(s)).rows
        return { rows, error: undefined }
      } catch (e) {
        return { rows: [], error: (e as Error).message }
      } finally {
        await db.close()
      }
    })
    : Effect.scoped(Effect.gen(function* () {
      const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
      // One connection, so session settings (session_replication_role) hold for the statements after them.
      return yield* sql.withTransaction(Effect.gen(function* () {
        let rows: ReadonlyArray<any> = []
        for (const s of statements) rows = yield* sql.unsafe(s)
        return { rows, error: undefined as string | undefined }
      })).pipe(
        Effect.catch((e: any) =>
          Effect.succeed({ rows: [], error: `${e?.message} ${e?.cause?.message} ${e?.cause?.cause?.message}` })
        ),
      )
    })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

/** Statements run as the replication role: row triggers (the append-only guard) do not fire. */
export const bypassingTriggers = (statements: ReadonlyArray<string>) => [
  "SET session_replication_role = replica",
  ...statements,
]
