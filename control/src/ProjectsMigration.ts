import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Tenancy and governance: projects (every existing key and session moves into `default`),
 * per-key and per-project limits, approval expiry, and the token buckets of rate limits.
 */
export const projectsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE projects (
    id text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    limits jsonb NOT NULL DEFAULT '{}',
    approval_webhook text,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
  )`
  yield* sql`INSERT INTO projects (id, description) VALUES ('default', 'the instance''s first project')`
  yield* sql`ALTER TABLE api_keys ADD COLUMN project text NOT NULL DEFAULT 'default' REFERENCES projects (id)`
  yield* sql`ALTER TABLE api_keys ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'`
  yield* sql`ALTER TABLE sessions ADD COLUMN project text NOT NULL DEFAULT 'default' REFERENCES projects (id)`
  yield* sql`ALTER TABLE sessions ADD COLUMN approval_expires_at timestamptz`
  yield* sql`CREATE INDEX sessions_project_id ON sessions (project, id)`
  // Unfinished sessions per key and per project: what concurrency limits count.
  yield* sql`CREATE INDEX sessions_key_unfinished ON sessions (key_id)
    WHERE status IN ('awaiting_approval', 'pending', 'starting', 'running')`
  yield* sql`CREATE INDEX sessions_project_unfinished ON sessions (project)
    WHERE status IN ('awaiting_approval', 'pending', 'starting', 'running')`
  yield* sql`CREATE INDEX sessions_awaiting_expiry ON sessions (approval_expires_at)
    WHERE status = 'awaiting_approval'`
  // One token bucket per limited subject (`key:<id>`, later `daemon:<id>`), shared by every replica.
  yield* sql`CREATE TABLE rate_buckets (
    subject text PRIMARY KEY,
    tokens double precision NOT NULL,
    updated_at timestamptz NOT NULL
  )`
  // Requests a session's proxy held for a human (network.approvals), and the decisions on them.
  // (In this migration, not an `0008b_` one: Migrator.fromRecord loads only `<digits>_name` ids.)
  yield* sql`CREATE TABLE egress_approvals (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    request_id text NOT NULL,
    rule text NOT NULL,
    host text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    approved boolean,
    decided_at timestamptz,
    decided_by text,
    delivered_at timestamptz,
    PRIMARY KEY (session_id, request_id)
  )`
  // Decisions still to hand to the node (the replica that holds the node's link delivers them).
  yield* sql`CREATE INDEX egress_approvals_undelivered ON egress_approvals (session_id)
    WHERE decided_at IS NOT NULL AND delivered_at IS NULL`
})
