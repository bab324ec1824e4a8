import {
  type NodeAtCapacity,
  type NodeSessionEvent,
  type NodeSessionNotFound,
  planDispatch,
  type SessionAlreadyRunning,
  type SessionDispatch,
  type SessionId,
  type UnknownSnapshot,
} from "@paws/core"
import { Cause, Context, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import type { RpcClientError } from "effect/rpc"
import { ControlConfig } from "./ControlConfig.ts"
import { makeNodeEventRecorder } from "./NodeEventRecorder.ts"
import { makeNodeLoad } from "./NodeLoad.ts"
import { makeDispatchPayload } from "./DispatchPayload.ts"
import { EventFeed } from "./EventFeed.ts"
import { NodeDrains } from "./NodeDrains.ts"
import { type NodeEntry, NodeRegistry } from "./NodeRegistry.ts"
import { QueueSignal } from "./QueueSignal.ts"
import { processStopping } from "./ProcessStopping.ts"
import { ReplicaLease } from "./ReplicaLease.ts"
import { redactCredentials } from "./RedactCredentials.ts"
import { SessionOwnership } from "./SessionOwnership.ts"
import { type ClaimedSession, SessionStore } from "./SessionStore.ts"

/**
 * Moves queued sessions onto nodes. The queue is the `pending` rows in the database, so a
 * restart loses nothing: on start, sessions that were claimed but never started go back to
 * the queue. Each dispatched session is one fiber that streams the node's events into the
 * database until the session ends.
 */
export class Dispatcher extends Context.Service<Dispatcher, {
  /**
   * Stops a starting/running session on its node: asks the node to cancel and waits (up to
   * 15 s) for its stream to end, which records `cancelled` once the node confirms the VM is
   * gone; a node that does not confirm has its stream interrupted (the node then stops the VM
   * once its PAWS_NODE_ADOPT_GRACE_MS passes with nobody following).
   */
  readonly stop: (id: SessionId, node: string | null) => Effect.Effect<void>
  readonly inflight: Effect.Effect<number>
  /** Resumes a paused session on its node (which holds its saved VM); the stream runs as a dispatch's does. */
  readonly resume: (claimed: ClaimedSession, node: NodeEntry) => Effect.Effect<void>
  /** Whether this replica streams the session's node events now. */
  readonly dispatching: (id: SessionId) => Effect.Effect<boolean>
}>()("paws/control/Dispatcher") {
  static readonly layer = Layer.effect(
    Dispatcher,
    Effect.gen(function* () {
      const config = yield* ControlConfig
      const store = yield* SessionStore
      const ownership = yield* SessionOwnership
      const registry = yield* NodeRegistry
      const signal = yield* QueueSignal
      const payloadOf = yield* makeDispatchPayload
      const feed = yield* EventFeed
      const drains = yield* NodeDrains
      const scope = yield* Effect.scope
      const running = new Map<SessionId, Fiber.Fiber<void>>()
      const load = makeNodeLoad()
      const attempts = new Map<SessionId, number>()
      const stopping = processStopping()
      /** Sessions a user cancelled: the node's "cancelled" confirms it (Sessions.cancel waits for that). */
      const cancelling = new Set<SessionId>()
      const maxAttempts = 3
      /** Retries while a node tears down an earlier attempt (a VM stop under TCG takes up to seconds): ~15 s in all. */
      const stillStopping = { max: 6, backoffMs: 1_000 }
      /** How far into the queue one pass looks for sessions the free nodes can take. */
      const lookahead = 256

      const lease = yield* ReplicaLease
      /** When this replica first saw each orphan it has not taken over yet (for PAWS_ADOPT_GRACE_MS). */
      const orphanSince = new Map<SessionId, number>()
      /** An orphan no node holds any more: a claim never started goes back to the queue; a running one fails. */
      const abandon = (id: SessionId) =>
        Effect.gen(function* () {
          if (yield* store.transition(id, "pending", "control_restarted", "starting")) return "requeued" as const
          return (yield* store.transition(id, "failed", "control_restarted", "running")) ? "lost" as const : undefined
        })
      /**
       * Sessions of replicas that are gone (this one before a restart included): taken over where this
       * replica holds their node's link (the node kept them running); re-queued or failed once none did in time.
       */
      const recover = (restarted: boolean) =>
        Effect.gen(function* () {
          const orphans = yield* ownership.orphans({ id: lease.id, restarted }, lease.leaseMs)
          const counts = { adopted: 0, requeued: 0, lost: 0 }
          const now = Date.now()
          const current = new Set<SessionId>()
          for (const o of orphans) {
            current.add(o.id)
            if (running.has(o.id)) continue
            const since = orphanSince.get(o.id) ?? now
            orphanSince.set(o.id, since)
            const entry = o.node === null ? undefined : yield* registry.get(o.node)
            if (entry !== undefined) {
              const claimed = yield* ownership.adopt(o, lease.id)
              if (claimed === undefined) continue
              counts.adopted++
              orphanSince.delete(o.id)
              load.take(entry.info.id)
              running.set(o.id, yield* Effect.forkIn(run(claimed, entry, "adopt"), scope))
              continue
            }
            if (now - since < config.adoptGraceMs) continue
            const outcome = yield* abandon(o.id)
            if (outcome !== undefined) counts[outcome]++
          }
          for (const id of orphanSince.keys()) if (!current.has(id)) orphanSince.delete(id)
          if (counts.adopted + counts.requeued + counts.lost > 0) {
            yield* Effect.logWarning("recovered sessions of a control replica that is gone").pipe(
              Effect.annotateLogs(counts),
            )
            yield* signal.kick
          }
        })

      const event = yield* makeNodeEventRecorder(cancelling)

      /**
       * The node failed us before or while running: re-queue if the VM never ran (at most
       * `maxAttempts` times, so a broken node cannot bounce a session forever), else fail.
       */
      const lost = (id: SessionId, reason: string, resume = false, retry = { max: maxAttempts, backoffMs: 100 }) =>
        Effect.gen(function* () {
          // This replica is stopping (its node links close first): the session is another replica's to take over.
          // Or it already is: this replica's lease lapsed and another took the session over (the node then
          // ended this replica's stream, which is no loss).
          if (stopping() || !(yield* ownership.heldBy(id, lease.id))) return
          // A resume the node never took leaves the session paused (its saved VM is still there).
          if (resume) return yield* store.transition(id, "failed", reason, "running")
          const attempt = (attempts.get(id) ?? 0) + 1
          attempts.set(id, attempt)
          const requeued = attempt < retry.max && (yield* store.transition(id, "pending", reason))
          if (requeued) yield* Effect.sleep(retry.backoffMs * attempt)
          else {
            attempts.delete(id)
            yield* store.transition(id, "failed", attempt >= retry.max ? `${reason} (${attempt} attempts)` : reason)
          }
          yield* feed.publish(id)
        })

      /**
       * Streams a session's node events into the database to its end: a new dispatch, a resume of a
       * paused session, or (`adopt`) one a gone replica dispatched, which its node kept running.
       */
      const run = (claimed: ClaimedSession, entry: NodeEntry, mode: "dispatch" | "resume" | "adopt" = "dispatch") => {
        const resume = mode === "resume"
        // What this dispatch carried: anything the node says back is logged only with these values redacted.
        let sent: SessionDispatch["network"]["credentials"] = {}
        return Effect.gen(function* () {
          const { id, spec } = claimed
          const payload = yield* payloadOf(claimed, resume)
          sent = payload.secrets
          const dispatch = payload.dispatch
          let ended = false
          const events: Stream.Stream<
            NodeSessionEvent,
            | NodeAtCapacity
            | UnknownSnapshot
            | SessionAlreadyRunning
            | NodeSessionNotFound
            | RpcClientError.RpcClientError
          > = mode === "adopt" ? entry.client.AttachSession({ sessionId: id }) : entry.client.RunSession(dispatch)
          const finished = yield* events.pipe(
            Stream.runForEach((e) =>
              Effect.map(
                event(claimed, e, dispatch.network.approvalTimeoutMs),
                (terminal) => void (ended ||= terminal),
              )
            ),
            // The node enforces the timeout; this is the safety net for a node that never reports back.
            Effect.timeoutOption(spec.timeoutMs + config.timeoutGraceMs),
          )
          if (finished._tag === "None") {
            yield* store.transition(id, "timeout", "node_missed_deadline")
            yield* entry.client.CancelSession({ sessionId: id }).pipe(Effect.timeout(5_000), Effect.ignoreCause)
          } else if (!ended && !stopping() && (yield* ownership.heldBy(id, lease.id))) {
            yield* store.transition(id, "failed", "node_ended_stream_early", resume ? "running" : undefined)
          }
          attempts.delete(id)
        }).pipe(
          Effect.catchTags({
            NodeAtCapacity: () =>
              store.transition(claimed.id, "pending", "node_at_capacity").pipe(Effect.andThen(Effect.sleep(200))),
            UnknownSnapshot: (e) => store.transition(claimed.id, "failed", `unknown_snapshot: ${e.snapshot}`),
            // Not a resume: the node still holds an earlier attempt of this session, from a replica that died
            // while starting it (recovery re-queued it). The node stops that attempt once it sees the link gone;
            // retry after it, a few times, rather than fail a session that never ran.
            SessionAlreadyRunning: () =>
              resume
                ? Effect.logWarning("node refused a resume").pipe(Effect.annotateLogs({ session: claimed.id }))
                : lost(claimed.id, "node_reports_already_running", false, stillStopping),
            VaultError: () => store.transition(claimed.id, "failed", "vault_cannot_decrypt_credentials"),
            MemoryUnreadable: () => store.transition(claimed.id, "failed", "memory_unreadable"),
            McpServerMissing: (e) => store.transition(claimed.id, "failed", `mcp_server_not_registered: ${e.name}`),
            RpcClientError: () => lost(claimed.id, "node_lost", resume),
            // Taking over: the node no longer holds it (its grace passed, or it never started there). Or a
            // dispatch refused because its cancel got there first: the cancel ends the session.
            NodeSessionNotFound: () => cancelling.has(claimed.id) ? Effect.void : abandon(claimed.id),
          }),
          // Our own interrupt (stop, shutdown) never reaches this handler; an interrupt here came
          // from the node's side (it shut down, or its link closed), so the node is lost too.
          // A node's refusal (e.g. its schema issue text) may quote the payload: never log credential values.
          Effect.catchCause((cause) =>
            Effect.logWarning("node lost during dispatch").pipe(
              Effect.annotateLogs({ session: claimed.id, cause: redactCredentials(Cause.pretty(cause), sent) }),
              Effect.andThen(lost(claimed.id, "node_lost", resume)),
            )
          ),
          Effect.asVoid,
          Effect.ensuring(Effect.gen(function* () {
            running.delete(claimed.id)
            cancelling.delete(claimed.id)
            load.release(entry.info.id)
            yield* feed.publish(claimed.id)
            yield* signal.kick
          })),
        )
      }

      /**
       * One pass: plan the head of the queue onto the nodes' free slots (each session only where
       * its snapshot is ready and its node selector matches), then claim each planned session. A
       * session no node fits now waits without holding up those behind it.
       */
      const pump = Effect.gen(function* () {
        while (true) {
          const entries = yield* registry.list
          const nodes = yield* drains.applyAll(entries.map((e) => load.withFreeSlots(e.info)))
          if (!nodes.some((n) => n.status === "ready" && n.capacity.available > 0)) return
          const head = yield* store.pendingHead(lookahead)
          const plan = planDispatch(head, nodes, (q) => q)
          let claimedAny = false
          for (const { node, session } of plan) {
            const claimed = yield* store.claim(session.id, node.id, lease.id)
            if (claimed === undefined) continue
            claimedAny = true
            const entry = entries.find((e) => e.info.id === node.id)!
            load.take(node.id)
            yield* feed.publish(claimed.id)
            yield* Effect.logInfo("dispatching session").pipe(
              Effect.annotateLogs({ session: claimed.id, node: node.id }),
            )
            running.set(claimed.id, yield* Effect.forkIn(run(claimed, entry), scope))
          }
          // Nothing claimable (all taken by another replica, or nothing fits): wait for a change.
          if (!claimedAny) return
        }
      })

      yield* recover(true)
      yield* recover(false).pipe(
        Effect.catchCause((cause) => Effect.logError("recovering sessions of lost replicas failed", cause)),
        // At least every second: a gone replica's sessions are taken over soon after their node calls home here
        // (it keeps them only for PAWS_NODE_ADOPT_GRACE_MS).
        Effect.repeat(Schedule.spaced(Math.max(100, Math.min(1_000, Math.floor(lease.leaseMs / 3))))),
        Effect.forkScoped,
      )
      yield* Effect.forkScoped(Effect.forever(
        pump.pipe(
          Effect.catchCause((cause) => Effect.logError("dispatcher pass failed", cause)),
          Effect.andThen(signal.wait(config.dispatchIntervalMs)),
        ),
      ))

      return Dispatcher.of({
        stop: Effect.fn("Dispatcher.stop")(function* (id: SessionId, node: string | null) {
          cancelling.add(id)
          const entry = node === null ? undefined : yield* registry.get(node)
          const asked = entry === undefined ? false : yield* entry.client.CancelSession({ sessionId: id }).pipe(
            Effect.timeout(5_000),
            Effect.as(true),
            Effect.catchCause((cause) =>
              Effect.logWarning("node did not confirm cancel").pipe(
                Effect.annotateLogs({ session: id, cause }),
                Effect.as(false),
              )
            ),
          )
          const fiber = running.get(id)
          if (fiber !== undefined) {
            // Not live on the node (yet): interrupting the RunSession call makes the node stop it after its grace.
            const ended = asked ? yield* Fiber.await(fiber).pipe(Effect.timeoutOption(15_000)) : undefined
            if (ended === undefined || ended._tag === "None") yield* Fiber.interrupt(fiber)
          }
        }),
        inflight: Effect.sync(() => running.size),
        resume: (claimed, entry) =>
          Effect.gen(function* () {
            load.take(entry.info.id)
            running.set(claimed.id, yield* Effect.forkIn(run(claimed, entry, "resume"), scope))
          }),
        dispatching: (id) => Effect.sync(() => running.has(id)),
      })
    }),
  )
}
