import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Migration 0006: daemon definitions, the sessions they create, and their triggers' bookkeeping. */
export const daemonsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // spec: the DaemonView without name and timestamps (credential header names only); the values
  // and the trigger signing secrets are vault-sealed, bound to the daemon's name.
  yield* sql`CREATE TABLE daemons (
    name text PRIMARY KEY,
    spec jsonb NOT NULL,
    credentials text,
    secrets text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`
  // input: the trigger payload for /input, vault-sealed (a webhook body may hold anything).
  yield* sql`ALTER TABLE sessions ADD COLUMN daemon text`
  yield* sql`ALTER TABLE sessions ADD COLUMN trigger jsonb`
  yield* sql`ALTER TABLE sessions ADD COLUMN input text`
  yield* sql`CREATE INDEX sessions_daemon ON sessions (daemon, id) WHERE daemon IS NOT NULL`
  // Replay protection: a webhook signature or a GitHub delivery id is accepted once.
  yield* sql`CREATE TABLE daemon_deliveries (
    daemon text NOT NULL,
    trigger text NOT NULL,
    delivery text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (daemon, trigger, delivery)
  )`
  // Cron: the last tick fired; watch: the last value seen.
  yield* sql`CREATE TABLE daemon_trigger_state (
    daemon text NOT NULL,
    trigger text NOT NULL,
    last_tick timestamptz,
    last_value text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (daemon, trigger)
  )`
  // One replica at a time runs the cron and watch loops: the holder of an unexpired lease.
  yield* sql`CREATE TABLE daemon_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
  )`
})
