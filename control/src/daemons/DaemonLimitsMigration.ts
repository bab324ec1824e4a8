import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Migration 0015: daemons belong to a project (those defined before, to `default`). */
export const daemonLimitsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE daemons ADD COLUMN project text NOT NULL DEFAULT 'default'`
  // Invocations per hour/day are counted from a daemon's recent sessions.
  yield* sql`CREATE INDEX sessions_daemon_created ON sessions (daemon, created_at) WHERE daemon IS NOT NULL`
})
