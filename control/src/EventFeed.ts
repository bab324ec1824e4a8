import type { SessionId } from "@paws/core"
import { Context, Duration, Effect, Layer, PubSub } from "effect"

/**
 * Tells event streams on this replica that a session has new events, so SSE clients see
 * them at once. Streams also re-read the database periodically, which covers events
 * written by other replicas.
 */
export class EventFeed extends Context.Service<EventFeed, {
  readonly publish: (id: SessionId) => Effect.Effect<void>
  /** Waits (scoped subscription) until `id` has news or the timeout passes. */
  readonly waitFor: (id: SessionId, timeout: Duration.Input) => Effect.Effect<void>
}>()("paws/control/EventFeed") {
  static readonly layer = Layer.effect(
    EventFeed,
    Effect.gen(function* () {
      const pubsub = yield* PubSub.sliding<SessionId>(4096)
      return EventFeed.of({
        publish: (id) => Effect.asVoid(PubSub.publish(pubsub, id)),
        waitFor: (id, timeout) =>
          Effect.scoped(Effect.gen(function* () {
            const sub = yield* PubSub.subscribe(pubsub)
            while ((yield* PubSub.take(sub)) !== id) {
              // another session's news; keep waiting
            }
          })).pipe(Effect.timeoutOption(timeout), Effect.asVoid),
      })
    }),
  )
}
