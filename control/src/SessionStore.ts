import {
  IdempotencyConflict,
  isTerminal,
  Session,
  SessionEvent,
  SessionId,
  type SessionResult,
  type SessionStatus,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { actorOf, AuditLog } from "./audit/AuditLog.ts"
import { egressDecision, egressDropped, mcpToolCall, statusChange } from "./audit/SessionAudit.ts"
import { makeBatcher } from "./Batcher.ts"
import { ControlConfig } from "./ControlConfig.ts"
import { json } from "./Rows.ts"
import {
  type ClaimedRow,
  type ClaimedSession,
  decodeEvent,
  fromStatuses,
  type NewSession,
  nodeJson,
  type QueuedSession,
  type SessionListQuery,
  type SessionRow,
  statusEvent,
  type StoredEvent,
  toClaimed,
  toSession,
  withoutNul,
} from "./SessionRows.ts"

export type { ClaimedSession, NewSession, QueuedSession, SessionOrigin, StoredEvent } from "./SessionRows.ts"

/**
 * Sessions and their events in PostgreSQL. The table is the durable queue: `pending` rows in
 * id (= creation) order. Every status change is one conditional UPDATE that also appends the
 * status event, so the transition rules hold across replicas and nothing is half-written.
 */
export class SessionStore extends Context.Service<SessionStore, {
  /** `guard` (limits) runs in the inserting transaction; without one, concurrent creates share a statement. */
  readonly create: <E = never>(
    s: NewSession,
    guard?: Effect.Effect<void, E>,
  ) => Effect.Effect<{ readonly id: SessionId; readonly created: boolean }, IdempotencyConflict | E>
  readonly get: (id: SessionId) => Effect.Effect<Session | undefined>
  readonly list: (q: SessionListQuery) => Effect.Effect<ReadonlyArray<Session>>
  /** The oldest queued sessions and what each needs of a node, for the Dispatcher's plan (not locked). */
  readonly pendingHead: (limit: number) => Effect.Effect<ReadonlyArray<QueuedSession>>
  /** Claims one queued session for a node; undefined if another replica (or a cancel) got there first. */
  readonly claim: (id: SessionId, node: string, replica: string) => Effect.Effect<ClaimedSession | undefined>
  /**
   * Moves a session to `to` if the transition table allows it from its current status (and it
   * is in `from`, when given); false if not.
   */
  readonly transition: (
    id: SessionId,
    to: SessionStatus,
    reason?: string,
    from?: SessionStatus,
  ) => Effect.Effect<boolean>
  readonly append: (id: SessionId, event: SessionEvent) => Effect.Effect<void>
  readonly setResult: (id: SessionId, result: SessionResult) => Effect.Effect<void>
  readonly events: (id: SessionId, afterId: string, limit: number) => Effect.Effect<ReadonlyArray<StoredEvent>>
  readonly countByStatus: Effect.Effect<Partial<Record<SessionStatus, number>>>
}>()("paws/control/SessionStore") {
  static readonly layer = Layer.effect(
    SessionStore,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const maxAuditRows = (yield* ControlConfig).maxAuditRows
      const audit = yield* AuditLog

      /**
       * One statement per batch of concurrent creates (see Batcher): the rows and their first
       * events; a row whose idempotency key already exists is skipped and reported as not inserted.
       */
      const insertBatch = (batch: ReadonlyArray<NewSession>) =>
        Effect.gen(function* () {
          const rows = batch.map((s) => ({
            id: s.id,
            status: s.status,
            project: s.project,
            approval_expires_at: s.approvalExpiresAt,
            spec: JSON.stringify(s.spec),
            credentials: s.credentials,
            key_id: s.keyId,
            idempotency_key: s.idempotencyKey ?? null,
            request_hash: s.requestHash ?? null,
            memory: s.memory === undefined ? null : JSON.stringify(s.memory),
            daemon: s.origin?.daemon ?? null,
            trigger: s.origin === undefined ? null : JSON.stringify(s.origin.trigger),
            input: s.origin?.input ?? null,
          }))
          const inserted = yield* sql<{ id: string }>`WITH s AS (
              INSERT INTO sessions ${sql.insert(rows as unknown as readonly [Record<string, unknown>])}
              ON CONFLICT (key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
              RETURNING id, status
            ), e AS (
              INSERT INTO session_events (session_id, event) SELECT id, jsonb_build_object('_tag', 'status',
                'status', status, 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
              FROM s ORDER BY id
            )
            SELECT id FROM s`
          const ids = new Set(inserted.map((r) => String(r.id)))
          return batch.map((s) => ids.has(s.id))
        }).pipe(Effect.orDie)

      const insert = yield* makeBatcher(insertBatch, { maxBatch: 64, maxInflight: 4 })

      const create = Effect.fnUntraced(function* <E>(s: NewSession, guard?: Effect.Effect<void, E>) {
        const inserted = guard === undefined ? yield* insert(s) : yield* sql.withTransaction(
          Effect.andThen(guard, Effect.map(insertBatch([s]), (r) => r[0] === true)),
        ).pipe(Effect.catchTag("SqlError", Effect.die))
        if (inserted) yield* audit.record(statusChange(s.id, s.status, {}, actorOf(s.keyId)))
        if (inserted) return { id: s.id, created: true }
        const existing = yield* sql<{ id: string; request_hash: string | null }>`SELECT id, request_hash FROM sessions
          WHERE key_id = ${s.keyId} AND idempotency_key = ${s.idempotencyKey ?? null}`.pipe(Effect.orDie)
        const first = existing[0]
        if (first === undefined || first.request_hash !== s.requestHash) {
          return yield* new IdempotencyConflict({
            message: "this Idempotency-Key was already used with a different request body",
          })
        }
        return { id: first.id as SessionId, created: false }
      })

      const get = (id: SessionId) =>
        sql<SessionRow>`SELECT * FROM sessions WHERE id = ${id}`.pipe(
          Effect.map((rows) => (rows[0] === undefined ? undefined : toSession(rows[0]))),
          Effect.orDie,
        )

      const list = Effect.fn("SessionStore.list")(function* (q: SessionListQuery) {
        const rows = yield* sql<SessionRow>`SELECT * FROM sessions
          WHERE ${q.status === undefined ? sql`TRUE` : sql`status = ${q.status}`}
            AND ${q.project === undefined ? sql`TRUE` : sql`project = ${q.project}`}
            AND ${q.cursor === undefined ? sql`TRUE` : sql`id < ${q.cursor}`}
            AND ${q.daemon === undefined ? sql`TRUE` : sql`daemon = ${q.daemon}`}
            AND ${q.node === undefined ? sql`TRUE` : sql`node = ${q.node}`}
          ORDER BY id DESC LIMIT ${q.limit}`.pipe(Effect.orDie)
        return rows.map(toSession)
      })

      /** A pending session `p` that may start: not a daemon's, or its daemon has none starting or running. */
      const daemonIdle = sql`(p.daemon IS NULL OR NOT EXISTS (
        SELECT 1 FROM sessions r WHERE r.daemon = p.daemon AND r.status IN ('starting', 'running')))`

      const pendingHead = (limit: number) =>
        sql<{ id: string; snapshot: string; selector: unknown }>`SELECT id, spec->>'snapshot' AS snapshot,
            spec->'nodeSelector' AS selector FROM sessions p WHERE status = 'pending' AND ${daemonIdle}
            ORDER BY id LIMIT ${limit}`.pipe(
          Effect.orDie,
          Effect.map((rows) =>
            rows.map((r): QueuedSession => {
              const selector = json(r.selector) as Record<string, string> | null
              return {
                id: r.id as SessionId,
                snapshot: r.snapshot,
                ...(selector === null || selector === undefined ? {} : { nodeSelector: selector }),
              }
            })
          ),
        )

      const claim = Effect.fnUntraced(function* (id: SessionId, node: string, replica: string) {
        const event = JSON.stringify(statusEvent("starting"))
        // A daemon's invocations run one at a time (its `queue` policy): one waits while another is active.
        const rows = yield* sql<ClaimedRow>`WITH c AS (
            UPDATE sessions SET status = 'starting', node = ${node}, replica = ${replica}
            WHERE id = (SELECT id FROM sessions p WHERE id = ${id} AND status = 'pending' AND ${daemonIdle}
              FOR UPDATE SKIP LOCKED)
            RETURNING id, spec, credentials, memory, input
          ), e AS (
            INSERT INTO session_events (session_id, event) SELECT id, ${event}::jsonb FROM c
          )
          SELECT * FROM c`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return undefined
        yield* audit.record(statusChange(row.id, "starting", { node }))
        return toClaimed(row)
      })

      /**
       * Ends a session's events with one row that counts the audit events dropped after the cap
       * (before its terminal status, which is where readers stop). A UNION member over `u`.
       */
      const droppedMarker = sql`SELECT id, jsonb_build_object('_tag', 'audit', 'event', jsonb_build_object(
          'time', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'decision', 'audit_dropped',
          'host', '*',
          'count', audit_events - ${maxAuditRows}::int,
          'reason', (audit_events - ${maxAuditRows}::int)::text || ' audit events dropped after the cap of '
            || ${maxAuditRows}::int::text || ' per session'
        )) AS event, 0 AS n FROM u WHERE audit_events > ${maxAuditRows}::int
        UNION ALL`

      const transition = Effect.fnUntraced(function* (
        id: SessionId,
        to: SessionStatus,
        nodeReason?: string,
        from?: SessionStatus,
      ) {
        const origins = fromStatuses(to).filter((s) => from === undefined || s === from)
        if (origins.length === 0) return false
        const reason = nodeReason === undefined ? undefined : withoutNul(nodeReason)
        const event = JSON.stringify(statusEvent(to, reason))
        const terminal = isTerminal(to)
        const rows = yield* sql<{ id: string; audit_events: number }>`WITH u AS (
            UPDATE sessions SET status = ${to},
              node = ${to === "pending" ? sql`NULL` : sql`node`},
              started_at = ${to === "running" ? sql`COALESCE(started_at, now())` : sql`started_at`},
              completed_at = ${terminal ? sql`now()` : sql`completed_at`},
              reason = ${reason === undefined ? sql`reason` : sql`${reason}`}
            WHERE id = ${id} AND status IN ${sql.in(origins)}
            RETURNING id, audit_events
          ), e AS (
            INSERT INTO session_events (session_id, event) SELECT id, event FROM (
              ${terminal ? droppedMarker : sql``}
              SELECT id, ${event}::jsonb AS event, 1 AS n FROM u
            ) x ORDER BY n
          )
          SELECT id, audit_events FROM u`.pipe(Effect.orDie)
        const dropped = Number(rows[0]?.audit_events ?? 0) - maxAuditRows
        if (rows.length > 0 && terminal && dropped > 0) yield* audit.record(egressDropped(id, dropped, maxAuditRows))
        if (rows.length > 0) yield* audit.record(statusChange(id, to, { reason }))
        return rows.length > 0
      })

      /**
       * Audit events are counted on the session row and stored only up to `maxAuditRows` per
       * session: a guest decides how many there are, the database must not.
       */
      const append = (id: SessionId, event: SessionEvent) =>
        (event._tag === "audit" || event._tag === "mcp"
          ? sql<{ node: string | null; audit_events: number }>`WITH u AS (
              UPDATE sessions SET audit_events = audit_events + 1 WHERE id = ${id} RETURNING audit_events, node
            ), i AS (
              INSERT INTO session_events (session_id, event)
              SELECT ${id}::uuid, ${nodeJson(event)}::jsonb FROM u WHERE audit_events <= ${maxAuditRows}::int
            )
            SELECT node, audit_events FROM u`.pipe(
            // The audit log keeps the same cap (and the same final count) as the session's events.
            Effect.flatMap(([u]) =>
              u !== undefined && Number(u.audit_events) <= maxAuditRows
                ? audit.record(
                  event._tag === "audit"
                    ? egressDecision(id, u.node, event.event)
                    : mcpToolCall(id, u.node, event.event),
                )
                : Effect.void
            ),
          )
          : sql`INSERT INTO session_events (session_id, event) VALUES (${id}, ${nodeJson(event)}::jsonb)`).pipe(
            Effect.asVoid,
            Effect.orDie,
          )

      const setResult = (id: SessionId, result: SessionResult) => {
        const event: SessionEvent = { _tag: "result", result }
        return sql`WITH u AS (
            UPDATE sessions SET result = ${nodeJson(result)}::jsonb WHERE id = ${id} RETURNING id
          )
          INSERT INTO session_events (session_id, event) SELECT id, ${nodeJson(event)}::jsonb FROM u`.pipe(
          Effect.asVoid,
          Effect.orDie,
        )
      }

      const events = (id: SessionId, afterId: string, limit: number) =>
        sql<{ id: unknown; event: unknown }>`SELECT id, event FROM session_events
          WHERE session_id = ${id} AND id > ${afterId}::bigint ORDER BY id LIMIT ${limit}`.pipe(
          Effect.map((rows) => rows.map((r) => ({ id: String(r.id), event: decodeEvent(json(r.event)) }))),
          Effect.orDie,
        )

      const countByStatus = sql<{ status: SessionStatus; n: number }>`SELECT status, count(*)::int AS n
        FROM sessions GROUP BY status`.pipe(
        Effect.map((rows) => Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]))),
        Effect.orDie,
      )

      return SessionStore.of({
        create,
        get,
        list,
        pendingHead,
        claim,
        transition,
        append,
        setResult,
        events,
        countByStatus,
      })
    }),
  )
}
