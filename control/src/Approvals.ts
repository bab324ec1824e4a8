import {
  IllegalTransition,
  type PendingApproval,
  type Principal,
  type Session,
  type SessionId,
  SessionNotFound,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { notifyApprovalWebhook } from "./ApprovalWebhook.ts"
import { ControlConfig } from "./ControlConfig.ts"
import { EventFeed } from "./EventFeed.ts"
import { Projects } from "./Projects.ts"
import { QueueSignal } from "./QueueSignal.ts"
import { SessionStore } from "./SessionStore.ts"

const notFound = (id: string) => new SessionNotFound({ sessionId: id, message: `no session ${id}` })

/**
 * Approval gates: sessions created with `requiresApproval` wait in `awaiting_approval` (never
 * claimed by the dispatcher) until a key with scope `approve` decides. Expiry is a database
 * timestamp: every replica sweeps for due ones, and a decision re-checks it, so it holds across
 * replicas and restarts. A project's webhook is told when a session starts waiting.
 */
export class Approvals extends Context.Service<Approvals, {
  readonly list: (project: string) => Effect.Effect<ReadonlyArray<PendingApproval>>
  readonly approve: (id: SessionId, p: Principal) => Effect.Effect<Session, SessionNotFound | IllegalTransition>
  readonly deny: (id: SessionId, p: Principal) => Effect.Effect<Session, SessionNotFound | IllegalTransition>
  /** Fire-and-forget POST to the project's webhook, if it has one. */
  readonly notifyWaiting: (session: Session) => Effect.Effect<void>
}>()("paws/control/Approvals") {
  static readonly layer = Layer.effect(
    Approvals,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* SessionStore
      const feed = yield* EventFeed
      const signal = yield* QueueSignal
      const projects = yield* Projects
      const { approvalSweepMs } = yield* ControlConfig

      /** Denies due sessions (all, or just `id`); a replica that lost the race moves nothing. */
      const expireDue = (id?: SessionId) =>
        Effect.gen(function* () {
          const due = yield* sql<{ id: SessionId }>`SELECT id FROM sessions WHERE status = 'awaiting_approval'
            AND approval_expires_at <= now() AND ${id === undefined ? sql`TRUE` : sql`id = ${id}`}`.pipe(Effect.orDie)
          for (const row of due) {
            if (yield* store.transition(row.id, "cancelled", "approval_expired", "awaiting_approval")) {
              yield* feed.publish(row.id)
              yield* Effect.logInfo("approval expired").pipe(Effect.annotateLogs({ session: row.id }))
            }
          }
        })

      yield* Effect.forkScoped(Effect.forever(
        expireDue().pipe(
          Effect.catchCause((cause) => Effect.logError("approval sweep failed", cause)),
          Effect.andThen(Effect.sleep(approvalSweepMs)),
        ),
      ))

      const owned = Effect.fnUntraced(function* (id: SessionId, p: Principal) {
        const session = yield* store.get(id)
        if (session === undefined || session.project !== p.project) return yield* notFound(id)
        return session
      })

      const decide = (decision: "approve" | "deny") =>
        Effect.fn(`Approvals.${decision}`)(function* (id: SessionId, p: Principal) {
          yield* owned(id, p)
          yield* expireDue(id)
          const to = decision === "approve" ? "pending" : "cancelled"
          const reason = decision === "approve" ? `approved_by_key:${p.keyId}` : `approval_denied_by_key:${p.keyId}`
          const moved = yield* store.transition(id, to, reason, "awaiting_approval")
          const after = yield* owned(id, p)
          if (!moved) {
            return yield* new IllegalTransition({
              sessionId: id,
              from: after.status,
              to,
              message: after.reason === "approval_expired"
                ? `session ${id} is not awaiting approval: its approval expired`
                : `session ${id} is ${after.status}, not awaiting approval`,
            })
          }
          yield* feed.publish(id)
          if (decision === "approve") yield* signal.kick
          yield* Effect.logInfo(`session ${decision === "approve" ? "approved" : "denied"}`).pipe(
            Effect.annotateLogs({ session: id, key: p.keyId }),
          )
          return after
        })

      const list = Effect.fn("Approvals.list")(function* (project: string) {
        const sessions = yield* store.list({ status: "awaiting_approval", limit: 1000, cursor: undefined, project })
        return sessions.toReversed().map((s) => ({
          sessionId: s.id,
          createdAt: s.createdAt,
          expiresAt: s.approvalExpiresAt ?? null,
          session: s,
        }))
      })

      const notifyWaiting = (session: Session) =>
        notifyApprovalWebhook(projects, session.project, {
          type: "session.awaiting_approval",
          sessionId: session.id,
          createdAt: session.createdAt,
          expiresAt: session.approvalExpiresAt ?? null,
          approvePath: `/v1/sessions/${session.id}/approve`,
          denyPath: `/v1/sessions/${session.id}/deny`,
        })

      return Approvals.of({ list, approve: decide("approve"), deny: decide("deny"), notifyWaiting })
    }),
  )
}
