import type { NodeSessionEvent } from "@paws/core"
import { type Cause, Effect, Queue, Stream } from "effect"

/** Events kept for a session nobody follows (output beyond this is dropped and counted). */
const maxHeldEvents = 10_000

/**
 * One running session's events, decoupled from who follows them. The runner emits into it; the
 * control replica that dispatched the session follows it (RunSession). When that follower goes
 * away before the session ends (its replica died or stopped, or the link dropped), the session
 * keeps running and its events are held for `graceMs`: another replica that holds a link to this
 * node may take it over (AttachSession). Nobody by then: `orphaned` runs (the caller stops the
 * session, as a node cut off from control must). With no grace it runs as the follower leaves,
 * which then waits for it (the session is released when its stream's scope closes).
 */
export interface SessionFeed {
  readonly emit: (event: NodeSessionEvent) => void
  /** The runner is done: the follower's stream ends after the events emitted so far. */
  readonly end: () => void
  /** A follower's stream; a new follower replaces the current one. */
  readonly follow: (resumed: boolean) => Stream.Stream<NodeSessionEvent>
  /** Nobody follows the session now (it is held for a replica to take over). */
  readonly unfollowed: () => boolean
}

export const makeSessionFeed = (graceMs: number, orphaned: Effect.Effect<void>): SessionFeed => {
  let sink: Queue.Queue<NodeSessionEvent, Cause.Done> | undefined
  let ended = false
  /** Emitted while nobody followed. */
  let held: Array<NodeSessionEvent> = []
  let droppedOutput = 0
  /**
   * What a replica taking over may lack (lost in flight with the one that went away), replayed in order:
   * every status (a few; each a transition the store applies once, so `running` precedes a held `completed`)
   * and the latest result. Both are idempotent.
   */
  const statuses: Array<NodeSessionEvent> = []
  let lastResult: NodeSessionEvent | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  const startGrace = () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      if (sink === undefined) Effect.runFork(orphaned)
    }, graceMs)
    timer.unref?.()
  }

  const emit = (event: NodeSessionEvent) => {
    if (event._tag === "status") statuses.push(event)
    if (event._tag === "result") lastResult = event
    if (sink !== undefined) {
      Queue.offerUnsafe(sink, event)
      return
    }
    if (held.length < maxHeldEvents || event._tag !== "output") held.push(event)
    else droppedOutput++
  }

  const follow = (resumed: boolean) =>
    Stream.callback<NodeSessionEvent>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          clearTimeout(timer)
          if (sink !== undefined) Queue.endUnsafe(sink)
          if (resumed) {
            // The replica taking over learns where the session stands, then what it missed.
            const since = new Set(held)
            for (const e of statuses) if (!since.has(e)) Queue.offerUnsafe(queue, e)
            if (lastResult !== undefined && !since.has(lastResult)) Queue.offerUnsafe(queue, lastResult)
            if (droppedOutput > 0) {
              Queue.offerUnsafe(queue, {
                _tag: "output",
                stream: "stderr",
                data: `[paws: ${droppedOutput} output chunks dropped while no control replica followed]\n`,
              })
            }
          }
          for (const e of held) Queue.offerUnsafe(queue, e)
          held = []
          droppedOutput = 0
          sink = queue
          if (ended) Queue.endUnsafe(queue)
        }),
        () =>
          Effect.suspend(() => {
            if (sink !== queue) return Effect.void
            sink = undefined
            return graceMs === 0 ? orphaned : Effect.sync(startGrace)
          }),
      )
    )

  // Armed from the start: a dispatch whose stream went away before it ever followed is orphaned too.
  if (graceMs > 0) startGrace()
  return {
    emit,
    end: () => {
      ended = true
      if (sink !== undefined) Queue.endUnsafe(sink)
      else startGrace()
    },
    follow,
    unfollowed: () => sink === undefined,
  }
}
