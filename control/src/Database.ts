import { PgClient } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
import { Migrator } from "effect/sql"
import { ControlConfig } from "./ControlConfig.ts"
import { startEmbeddedPostgres } from "./EmbeddedPostgres.ts"
import { migrations } from "./Migrations.ts"

const migrate = Layer.effectDiscard(
  Migrator.make({})({ loader: migrations, table: "paws_migrations" }).pipe(
    Effect.tap((applied) =>
      applied.length > 0
        ? Effect.logInfo("database migrated").pipe(Effect.annotateLogs({ migrations: applied.map(([, n]) => n) }))
        : Effect.void
    ),
  ),
)

/**
 * `SqlClient` + `PgClient` on `DATABASE_URL` when set, else on embedded PGlite in the data
 * dir; migrated before anything else uses it.
 */
export const Database = Layer.unwrap(Effect.gen(function* () {
  const config = yield* ControlConfig
  if (config.databaseUrl !== undefined) {
    yield* Effect.logInfo("database: PostgreSQL from DATABASE_URL")
    // multiplex: pipeline statements from concurrent requests into one write per connection.
    return PgClient.layer({ url: config.databaseUrl, maxConnections: config.dbMaxConnections, multiplex: true })
  }
  yield* Effect.logInfo("database: embedded PGlite").pipe(Effect.annotateLogs({ dataDir: config.dataDir }))
  return Layer.unwrap(
    Effect.map(
      startEmbeddedPostgres(config.dataDir),
      ({ path }) => PgClient.layer({ path, maxConnections: 1, username: "postgres", database: "postgres" }),
    ),
  )
})).pipe(
  (client) => Layer.provideMerge(migrate, client),
  Layer.orDie,
)
