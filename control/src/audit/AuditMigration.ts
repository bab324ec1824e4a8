import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Migration 0009: the audit log and its retention checkpoints. Append-only in the database
 * itself: a trigger refuses UPDATE, TRUNCATE and DELETE, except a DELETE of rows (and of the
 * anchors that signed them) inside a transaction that set `paws.audit_prune` (the retention prune,
 * which writes a signed checkpoint in that same transaction). A database superuser can still disable triggers: that is what the
 * hash chain is for.
 */
export const auditMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE audit (
    id bigint PRIMARY KEY,
    time timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    result text NOT NULL,
    session text,
    daemon text,
    detail jsonb NOT NULL,
    hash text NOT NULL
  )`
  yield* sql`CREATE INDEX audit_time ON audit (time)`
  yield* sql`CREATE INDEX audit_actor ON audit (actor, id)`
  yield* sql`CREATE INDEX audit_session ON audit (session, id) WHERE session IS NOT NULL`
  yield* sql`CREATE INDEX audit_daemon ON audit (daemon, id) WHERE daemon IS NOT NULL`
  // pruned: rows through through_id were deleted, the chain continues from hash. Otherwise an
  // anchor: row through_id must still carry hash (a rewritten or truncated chain fails verify).
  yield* sql`CREATE TABLE audit_checkpoints (
    through_id bigint NOT NULL,
    pruned boolean NOT NULL,
    hash text NOT NULL,
    at timestamptz NOT NULL,
    signature text NOT NULL,
    PRIMARY KEY (through_id, pruned)
  )`
  yield* sql.unsafe(`CREATE FUNCTION paws_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND current_setting('paws.audit_prune', true) = 'on' THEN
        IF TG_TABLE_NAME = 'audit' THEN
          RETURN OLD;
        ELSIF NOT OLD.pruned THEN
          RETURN OLD; -- an anchor of rows being pruned: the prune checkpoint takes its place
        END IF;
      END IF;
      RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END $$`)
  for (const table of ["audit", "audit_checkpoints"]) {
    yield* sql.unsafe(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION paws_audit_append_only()`)
    yield* sql.unsafe(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
      FOR EACH STATEMENT EXECUTE FUNCTION paws_audit_append_only()`)
  }
})
