import { Effect } from "effect"
import { Migrator } from "effect/sql"
import { SqlClient } from "effect/sql"
import { daemonLimitsMigration } from "./daemons/DaemonLimitsMigration.ts"
import { daemonsMigration } from "./daemons/DaemonMigration.ts"
import { auditMigration } from "./audit/AuditMigration.ts"
import { projectRowsMigration } from "./ProjectRowsMigration.ts"
import { projectsMigration } from "./ProjectsMigration.ts"
import { consoleSessionsMigration } from "./console/ConsoleSessionsMigration.ts"

/** Schema migrations, applied in id order at start; never edit one that has shipped, add a new one. */
export const migrations = Migrator.fromRecord({
  "0001_initial": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE api_keys (
      id text PRIMARY KEY,
      name text NOT NULL,
      scopes text NOT NULL,
      secret_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    )`
    yield* sql`CREATE TABLE sessions (
      id uuid PRIMARY KEY,
      status text NOT NULL,
      spec jsonb NOT NULL,
      credentials text,
      node text,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      completed_at timestamptz,
      reason text,
      result jsonb,
      key_id text,
      idempotency_key text,
      request_hash text
    )`
    yield* sql`CREATE UNIQUE INDEX sessions_idempotency ON sessions (key_id, idempotency_key)
      WHERE idempotency_key IS NOT NULL`
    yield* sql`CREATE INDEX sessions_status_id ON sessions (status, id)`
    yield* sql`CREATE TABLE session_events (
      id bigserial PRIMARY KEY,
      session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      event jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
    yield* sql`CREATE INDEX session_events_session ON session_events (session_id, id)`
  }),
  "0002_settings": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE paws_settings (name text PRIMARY KEY, value text NOT NULL)`
  }),
  "0003_node_tokens": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE node_tokens (
      id text PRIMARY KEY,
      name text NOT NULL,
      secret_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    )`
  }),
  "0004_session_audit_events": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Audit events a node reported for the session, stored or not: what enforces the per-session cap.
    yield* sql`ALTER TABLE sessions ADD COLUMN audit_events integer NOT NULL DEFAULT 0`
  }),
  "0005_node_token_binding": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE node_tokens ADD COLUMN node_id text`
    yield* sql`ALTER TABLE node_tokens ADD COLUMN max_concurrent integer`
  }),
  "0006_daemons": daemonsMigration,
  "0007_memory": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The memory key and options control gave a session (daemon invocations); never user-set.
    yield* sql`ALTER TABLE sessions ADD COLUMN memory jsonb`
    yield* sql`CREATE TABLE memory_states (
      key text NOT NULL,
      generation integer NOT NULL,
      session_id uuid NOT NULL,
      sealed text NOT NULL,
      bytes integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (key, generation)
    )`
    yield* sql`CREATE TABLE memory_history (
      id bigserial PRIMARY KEY,
      key text NOT NULL,
      session_id uuid NOT NULL,
      sealed text NOT NULL,
      bytes integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
    yield* sql`CREATE INDEX memory_history_key ON memory_history (key, id)`
  }),
  "0013_node_drains": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Drained nodes take no new sessions; in the database so every replica, and a restart, sees it.
    yield* sql`CREATE TABLE node_drains (node_id text PRIMARY KEY, drained_at timestamptz NOT NULL DEFAULT now())`
  }),
  "0014_control_replicas": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Each control replica's lease; a claimed session belongs to the replica that claimed it.
    yield* sql`CREATE TABLE control_replicas (id text PRIMARY KEY, seen_at timestamptz NOT NULL DEFAULT now())`
    yield* sql`ALTER TABLE sessions ADD COLUMN replica text`
  }),
  "0010_mcp_servers": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // config: the registration without secret values (env/header names only); secrets: the values, sealed.
    yield* sql`CREATE TABLE mcp_servers (
      name text PRIMARY KEY,
      config jsonb NOT NULL,
      secrets text,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
  }),
  "0009_audit": auditMigration,
  "0015_daemon_limits": daemonLimitsMigration,
  "0008_projects": projectsMigration,
  "0011_live": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Exposed guest ports (PortExposures): the token or PIN only as a hash; cookies granted after access.
    yield* sql`CREATE TABLE port_exposures (
      id text PRIMARY KEY,
      session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      port integer NOT NULL,
      access text NOT NULL,
      secret_hash text,
      failures integer NOT NULL DEFAULT 0,
      locked_until timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    )`
    yield* sql`CREATE INDEX port_exposures_session ON port_exposures (session_id)`
    yield* sql`CREATE TABLE port_exposure_grants (
      hash text PRIMARY KEY,
      exposure_id text NOT NULL REFERENCES port_exposures (id) ON DELETE CASCADE,
      expires_at timestamptz NOT NULL
    )`
  }),
  "0017_node_presence": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // What each replica's nodes last reported, so every replica lists (and places against) all of them.
    yield* sql`CREATE TABLE node_presence (
      node_id text PRIMARY KEY,
      replica text NOT NULL,
      info jsonb NOT NULL,
      seen_at timestamptz NOT NULL DEFAULT now()
    )`
  }),
  "0018_console_sessions": consoleSessionsMigration,
  "0020_project_rows": projectRowsMigration,
})
