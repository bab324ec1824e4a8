import { AuditLog, currentActor } from "../audit/AuditLog.ts"
import {
  type DaemonInvocation,
  type InvalidRequest,
  type Principal,
  type RateLimited,
  type SessionId,
  type SessionInput,
  type SessionTrigger,
  type SnapshotUnavailable,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { EventFeed } from "../EventFeed.ts"
import { Sessions } from "../Sessions.ts"
import { SessionStore } from "../SessionStore.ts"
import { DaemonQuotas } from "./DaemonQuotas.ts"
import { Daemons } from "./Daemons.ts"
import { DaemonStore, type StoredDaemon } from "./DaemonStore.ts"

/** The key id a daemon's sessions are created under (sessions record who made them). */
export const daemonKeyId = (name: string) => `daemon:${name}`
/** The memory key of a daemon's /state and LLM history (MemoryStore; GET /v1/daemons/{name}/history reads it). */
export const daemonMemoryKey = (name: string) => `daemon:${name}`
/**
 * Who a daemon's invocations act as: its own key id, in the daemon's project (so that project's
 * quotas apply), under no key limits of their own (the daemon's `limits` are its own).
 */
export const daemonPrincipal = (name: string, project: string): Principal => ({
  keyId: daemonKeyId(name),
  scopes: ["sessions:write"],
  project,
  limits: {},
})

/**
 * Turns a fired trigger into a session under the daemon's concurrency policy: `queue` creates it
 * (the dispatcher starts a daemon's sessions one at a time), `skip` records it as a cancelled
 * session (reason `skipped_while_running`) while another is active, `replace` cancels the active
 * ones first. The payload goes to the guest's /input, sealed with the session. Over one of the
 * daemon's limits (or its project's quotas), a manual run fails with RateLimited (a 429) and a
 * trigger's firing is recorded as a `cancelled` session with reason `rate_limited: <limit>`.
 */
export class DaemonInvoker extends Context.Service<DaemonInvoker, {
  readonly invoke: (
    daemon: StoredDaemon,
    trigger: SessionTrigger,
    event: unknown,
    options?: { readonly idempotencyKey?: string },
  ) => Effect.Effect<DaemonInvocation, InvalidRequest | SnapshotUnavailable | RateLimited>
}>()("paws/control/DaemonInvoker") {
  static readonly layer = Layer.effect(
    DaemonInvoker,
    Effect.gen(function* () {
      const daemons = yield* Daemons
      const store = yield* DaemonStore
      const sessions = yield* Sessions
      const sessionStore = yield* SessionStore
      const feed = yield* EventFeed
      const audit = yield* AuditLog
      const quotas = yield* DaemonQuotas

      const fired = (daemon: string, trigger: SessionTrigger, result: string, session: string, limit?: string) =>
        Effect.flatMap(trigger.kind === "manual" ? currentActor : Effect.succeed("system"), (actor) =>
          audit.record({
            actor,
            action: "daemon.trigger",
            target: `${daemon}/${trigger.name}`,
            result,
            daemon,
            ...(session === "" ? {} : { session }),
            detail: { kind: trigger.kind, ...(limit === undefined ? {} : { limit }) },
          }))

      const invoke = Effect.fn("DaemonInvoker.invoke")(function* (
        daemon: StoredDaemon,
        trigger: SessionTrigger,
        event: unknown,
        options: { readonly idempotencyKey?: string } = {},
      ) {
        const name = daemon.view.name
        if (options.idempotencyKey !== undefined) {
          // A retried invocation (a cron tick fired again after a restart) changes nothing.
          const existing = yield* store.sessionByKey(name, options.idempotencyKey)
          if (existing !== undefined) return { sessionId: existing.id, status: existing.status }
        }
        const active = yield* store.activeSessions(name)
        const policy = daemon.view.concurrency
        const input: SessionInput = { files: { "event.json": JSON.stringify(event) }, trigger: trigger.kind }
        // Every invocation shares the daemon's memory: /state, and LLM history when it records it.
        const memory = daemon.view.memory
        const skipping = policy === "skip" && active.length > 0
        const replace = Effect.gen(function* () {
          if (policy !== "replace" || active.length === 0) return
          // Over a limit that replacing does not free, the running session must not be cancelled for nothing.
          yield* quotas.precheck(daemon)
          for (const id of active) {
            // It may have finished meanwhile.
            yield* sessions.cancel(id as SessionId, daemon.project).pipe(Effect.ignore)
          }
        })
        const created = yield* Effect.andThen(
          replace,
          sessions.create(
            yield* daemons.sessionSpec(daemon),
            daemonPrincipal(name, daemon.project),
            options.idempotencyKey,
            {
              // A skipped invocation is recorded whatever the limits: it will not run.
              guard: skipping ? undefined : quotas.guard(daemon),
              origin: { daemon: name, trigger, input },
              memory: {
                key: daemonMemoryKey(name),
                ...(memory?.keepGenerations === undefined ? {} : { keepGenerations: memory.keepGenerations }),
                ...(memory?.llmHistory === true ? { recordLlmHistory: true } : {}),
              },
            },
          ),
        ).pipe(
          // The same idempotency key with another spec: the daemon changed between two replicas' reads.
          Effect.catchTag("IdempotencyConflict", (e) => Effect.die(e)),
          Effect.map((accepted) => ({ accepted })),
          Effect.catchTag("RateLimited", (limited) => Effect.succeed({ limited })),
        )
        if ("limited" in created) {
          const { limit } = created.limited
          yield* Effect.logInfo("daemon invocation rate limited").pipe(
            Effect.annotateLogs({ daemon: name, trigger: trigger.name, limit }),
          )
          if (trigger.kind === "manual") {
            // The caller is there to be told: a 429 naming the limit, no session.
            yield* fired(name, trigger, "rate_limited", "", limit)
            return yield* created.limited
          }
          // A trigger has no one to answer: the firing is kept, visibly, as a session that never ran.
          const id = yield* quotas.recordLimited(daemon, trigger, limit, options.idempotencyKey)
          yield* fired(name, trigger, "rate_limited", id, limit)
          return { sessionId: id, status: "cancelled" }
        }
        const { accepted } = created
        if (skipping) {
          yield* fired(name, trigger, "skipped", accepted.sessionId)
          yield* sessionStore.transition(accepted.sessionId, "cancelled", "skipped_while_running")
          yield* feed.publish(accepted.sessionId)
          yield* Effect.logInfo("daemon invocation skipped").pipe(
            Effect.annotateLogs({ daemon: name, trigger: trigger.name, running: active[0] }),
          )
          return { sessionId: accepted.sessionId, status: "cancelled" }
        }
        yield* fired(name, trigger, "invoked", accepted.sessionId)
        yield* Effect.logInfo("daemon invoked").pipe(
          Effect.annotateLogs({ daemon: name, trigger: trigger.name, session: accepted.sessionId }),
        )
        return { sessionId: accepted.sessionId, status: accepted.status }
      })

      return DaemonInvoker.of({ invoke })
    }),
  )
}
