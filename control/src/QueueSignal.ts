import { Context, Duration, Effect, Latch, Layer } from "effect"

/**
 * Wakes the dispatcher when there may be work: a session was queued, a node came or went,
 * a slot freed up. Missed or extra wake-ups are harmless: the dispatcher also polls.
 */
export class QueueSignal extends Context.Service<QueueSignal, {
  readonly kick: Effect.Effect<void>
  /** Waits for a kick or the timeout, whichever comes first. */
  readonly wait: (timeout: Duration.Input) => Effect.Effect<void>
}>()("paws/control/QueueSignal") {
  static readonly layer = Layer.effect(
    QueueSignal,
    Effect.gen(function* () {
      const latch = yield* Latch.make(false)
      return QueueSignal.of({
        kick: Effect.asVoid(latch.open),
        wait: (timeout) =>
          latch.await.pipe(
            Effect.timeoutOption(timeout),
            Effect.andThen(latch.close),
            Effect.asVoid,
          ),
      })
    }),
  )
}
