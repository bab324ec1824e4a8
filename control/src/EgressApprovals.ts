import {
  EgressAlreadyDecided,
  type EgressApprovalView,
  EgressRequestNotFound,
  type Principal,
  type SessionEvent,
  type SessionId,
  SessionNotFound,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { notifyApprovalWebhook } from "./ApprovalWebhook.ts"
import { NodeRegistry } from "./NodeRegistry.ts"
import { Projects } from "./Projects.ts"
import { iso } from "./Rows.ts"
import { SessionStore } from "./SessionStore.ts"

type Held = Extract<SessionEvent, { _tag: "egress_approval" }>

interface Row {
  readonly request_id: string
  readonly rule: string
  readonly host: string
  readonly method: string
  readonly path: string
  readonly requested_at: unknown
  readonly expires_at: unknown
  readonly approved: boolean | null
  readonly decided_at: unknown
  readonly decided_by: string | null
  readonly expired: boolean
}

const toView = (r: Row): EgressApprovalView => ({
  requestId: r.request_id,
  rule: r.rule,
  host: r.host,
  method: r.method,
  path: r.path,
  status: r.approved === true ? "approved" : r.approved === false ? "denied" : r.expired ? "expired" : "pending",
  requestedAt: iso(r.requested_at)!,
  expiresAt: iso(r.expires_at)!,
  decidedAt: iso(r.decided_at),
  decidedBy: r.decided_by,
})

/** The proxy's own default (EgressGate), used when the session set no timeout. */
export const defaultEgressTimeoutMs = 300_000

/**
 * Per-request egress approval: a node reports a request its proxy holds (an `egress_approval`
 * event), a human decides over the API, and the decision goes back to the node over RPC. The
 * decision is stored first; the replica whose registry holds the session's node delivers it (at
 * once when that is this one, else by a sweep on that replica), so it works behind a balancer.
 */
export class EgressApprovals extends Context.Service<EgressApprovals, {
  readonly record: (session: SessionId, held: Held, timeoutMs: number) => Effect.Effect<void>
  readonly list: (session: SessionId, p: Principal) => Effect.Effect<ReadonlyArray<EgressApprovalView>, SessionNotFound>
  readonly decide: (
    session: SessionId,
    requestId: string,
    approve: boolean,
    p: Principal,
  ) => Effect.Effect<EgressApprovalView, SessionNotFound | EgressRequestNotFound | EgressAlreadyDecided>
}>()("paws/control/EgressApprovals") {
  static readonly layer = Layer.effect(
    EgressApprovals,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* SessionStore
      const registry = yield* NodeRegistry
      const projects = yield* Projects

      const select = sql`SELECT *, (approved IS NULL AND expires_at <= now()) AS expired FROM egress_approvals`

      const owned = Effect.fnUntraced(function* (id: SessionId, p: Principal) {
        const s = yield* store.get(id)
        if (s === undefined || s.project !== p.project) {
          return yield* new SessionNotFound({ sessionId: id, message: `no session ${id}` })
        }
        return s
      })

      const record = (session: SessionId, held: Held, timeoutMs: number) =>
        Effect.gen(function* () {
          const rows = yield* sql<{ expires_at: unknown }>`INSERT INTO egress_approvals
              (session_id, request_id, rule, host, method, path, expires_at)
            VALUES (${session}, ${held.requestId}, ${held.rule}, ${held.host}, ${held.method}, ${held.path},
              now() + ${timeoutMs} * interval '1 millisecond')
            ON CONFLICT DO NOTHING RETURNING expires_at`.pipe(Effect.orDie)
          const s = rows[0] === undefined ? undefined : yield* store.get(session)
          if (s === undefined) return
          // Method, host and path (no query values) are what a human decides on; never headers or bodies.
          yield* notifyApprovalWebhook(projects, s.project, {
            type: "egress.awaiting_approval",
            sessionId: session,
            requestId: held.requestId,
            rule: held.rule,
            method: held.method,
            host: held.host,
            path: held.path,
            expiresAt: iso(rows[0]!.expires_at),
            approvePath: `/v1/sessions/${session}/egress-approvals/${held.requestId}/approve`,
            denyPath: `/v1/sessions/${session}/egress-approvals/${held.requestId}/deny`,
          })
        })

      /** Hands decided, undelivered requests of sessions whose node this replica holds to that node. */
      const deliver = (only?: SessionId) =>
        Effect.gen(function* () {
          const rows = yield* sql<
            { session_id: SessionId; request_id: string; approved: boolean; node: string | null }
          >`
            SELECT e.session_id, e.request_id, e.approved, s.node FROM egress_approvals e
            JOIN sessions s ON s.id = e.session_id
            WHERE e.decided_at IS NOT NULL AND e.delivered_at IS NULL AND s.status IN ('starting', 'running')
              AND ${only === undefined ? sql`TRUE` : sql`e.session_id = ${only}`}`.pipe(Effect.orDie)
          for (const row of rows) {
            const entry = row.node === null ? undefined : yield* registry.get(row.node)
            if (entry === undefined) continue
            const sent = yield* entry.client.DecideEgress({
              sessionId: row.session_id,
              requestId: row.request_id,
              approve: row.approved,
            }).pipe(Effect.timeout(5_000), Effect.as(true), Effect.catchCause(() => Effect.succeed(false)))
            if (sent) {
              yield* sql`UPDATE egress_approvals SET delivered_at = now()
                WHERE session_id = ${row.session_id} AND request_id = ${row.request_id}`.pipe(Effect.orDie)
            }
          }
        })

      yield* Effect.forkScoped(Effect.forever(
        deliver().pipe(
          Effect.catchCause((cause) => Effect.logError("egress decision delivery failed", cause)),
          Effect.andThen(Effect.sleep(1_000)),
        ),
      ))

      const list = Effect.fn("EgressApprovals.list")(function* (session: SessionId, p: Principal) {
        yield* owned(session, p)
        const rows = yield* sql<Row>`${select} WHERE session_id = ${session} ORDER BY requested_at, request_id`
          .pipe(Effect.orDie)
        return rows.map(toView)
      })

      const decide = Effect.fn("EgressApprovals.decide")(
        function* (session: SessionId, requestId: string, approve: boolean, p: Principal) {
          yield* owned(session, p)
          const updated = yield* sql<{ request_id: string }>`UPDATE egress_approvals
            SET approved = ${approve}, decided_at = now(), decided_by = ${p.keyId}
            WHERE session_id = ${session} AND request_id = ${requestId} AND approved IS NULL AND expires_at > now()
            RETURNING request_id`.pipe(Effect.orDie)
          const rows = yield* sql<Row>`${select} WHERE session_id = ${session} AND request_id = ${requestId}`
            .pipe(Effect.orDie)
          const row = rows[0]
          if (row === undefined) {
            return yield* new EgressRequestNotFound({
              requestId,
              message: `no held request ${requestId} in ${session}`,
            })
          }
          if (updated.length === 0) {
            const status = toView(row).status
            return yield* new EgressAlreadyDecided({
              requestId,
              status,
              message: status === "expired"
                ? `request ${requestId} expired: the proxy already answered the guest 403`
                : `request ${requestId} was already ${status}`,
            })
          }
          yield* deliver(session)
          yield* Effect.logInfo(`egress request ${approve ? "approved" : "denied"}`).pipe(
            Effect.annotateLogs({ session, requestId, key: p.keyId, host: row.host, method: row.method }),
          )
          return toView(row)
        },
      )

      return EgressApprovals.of({ record, list, decide })
    }),
  )
}
