import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Console sign-ins: the cookie's secret is stored only as its SHA-256 (`hash`). A sign-in made with
 * an API key (`key_id`) takes the key's scopes and project at each request; an OIDC one keeps the
 * scopes and project mapped at login.
 */
export const consoleSessionsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE console_sessions (
    hash text PRIMARY KEY,
    via text NOT NULL,
    actor text NOT NULL,
    key_id text,
    email text,
    scopes text NOT NULL,
    project text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
  )`
  yield* sql`CREATE INDEX console_sessions_expires ON console_sessions (expires_at)`
})
