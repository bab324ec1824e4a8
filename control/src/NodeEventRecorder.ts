import { isTerminal, type NodeSessionEvent, type SessionId } from "@paws/core"
import { Effect } from "effect"
import { defaultEgressTimeoutMs, EgressApprovals } from "./EgressApprovals.ts"
import { EventFeed } from "./EventFeed.ts"
import { MemoryStore } from "./MemoryStore.ts"
import type { ClaimedSession } from "./SessionRows.ts"
import { SessionStore } from "./SessionStore.ts"

/**
 * Records one event a node streams for a dispatched session, and tells whether it ended the
 * stream (a terminal status, or `paused`). `cancelling`: sessions a user cancelled, whose
 * `cancelled` is recorded as `cancelled_by_user`.
 */
export const makeNodeEventRecorder = (cancelling: ReadonlySet<SessionId>) =>
  Effect.gen(function* () {
    const store = yield* SessionStore
    const memories = yield* MemoryStore
    const egress = yield* EgressApprovals
    const feed = yield* EventFeed
    return (claimed: ClaimedSession, e: NodeSessionEvent, egressTimeoutMs = defaultEgressTimeoutMs) =>
      Effect.gen(function* () {
        const id = claimed.id
        // Memory events are stored under the session's memory key, never as session events.
        if (e._tag === "state" || e._tag === "llm") {
          if (claimed.memory === null) return false
          if (e._tag === "state") yield* memories.saveState(claimed.memory, id, e.tar)
          else yield* memories.recordExchange(claimed.memory, id, e.exchange)
          return false
        }
        if (e._tag === "status") {
          // "starting" was recorded when the session was claimed; the node repeating it is no news.
          if (e.status === "starting") return false
          const reason = e.status === "cancelled" && cancelling.has(id) ? "cancelled_by_user" : e.reason
          const moved = yield* store.transition(id, e.status, reason)
          // Paused: the VM is saved on the node and released, so its stream ends here.
          return moved && (isTerminal(e.status) || e.status === "paused")
        }
        if (e._tag === "egress_approval") yield* egress.record(id, e, egressTimeoutMs)
        if (e._tag === "result") yield* store.setResult(id, e.result)
        else yield* store.append(id, e)
        return false
      }).pipe(Effect.tap(() => feed.publish(claimed.id)))
  })
