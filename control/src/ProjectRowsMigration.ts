import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Migration 0020: every audit row and snapshot belongs to a project. Audit rows written before
 * it are `default`'s (ADD COLUMN with a default rewrites nothing, so the append-only trigger and
 * the rows' hashes are untouched). Snapshots live on nodes, by name: `snapshot_projects` records
 * which project built one through the API; a name without a row is the instance's, shared by all.
 */
export const projectRowsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE audit ADD COLUMN project text NOT NULL DEFAULT 'default'`
  yield* sql`CREATE INDEX audit_project ON audit (project, id)`
  yield* sql`CREATE TABLE snapshot_projects (
    name text PRIMARY KEY,
    project text NOT NULL REFERENCES projects (id),
    created_at timestamptz NOT NULL DEFAULT now()
  )`
})
