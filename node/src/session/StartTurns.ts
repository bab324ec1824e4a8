import { Effect, Semaphore } from "effect"
import type { Scope } from "effect"

/**
 * How many sessions a node starts at once (place → restore → prepared → `running`); the rest wait
 * their turn. A start is CPU-bound (QEMU restoring and the guest resuming under TCG, a proxy
 * spawning): 128 at once on two cores made every one slow and the node missed its heartbeats,
 * while a few at a time finish each quickly and hand the CPU on.
 */
export interface StartTurns {
  /**
   * Waits for a turn; the turn is held until the returned `done` runs or the scope closes,
   * whichever comes first (a session failing while starting hands its turn on too).
   */
  readonly take: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** Sessions waiting for a turn now. */
  readonly waiting: () => number
}

export const makeStartTurns = (turns: number): Effect.Effect<StartTurns> =>
  Effect.map(Semaphore.make(turns), (gate) => {
    let waiting = 0
    const take = Effect.gen(function* () {
      let held = false
      const handBack = Effect.uninterruptible(Effect.suspend(() => {
        if (!held) return Effect.void
        held = false
        return Semaphore.release(gate, 1)
      }))
      // The wait stays interruptible (a session cancelled while waiting just leaves the line).
      yield* Effect.acquireRelease(
        Effect.sync(() => void waiting++).pipe(
          Effect.andThen(Effect.interruptible(Semaphore.take(gate, 1))),
          Effect.ensuring(Effect.sync(() => void waiting--)),
          Effect.andThen(Effect.sync(() => void (held = true))),
        ),
        () => handBack,
      )
      return Effect.asVoid(handBack)
    })
    return { take, waiting: () => waiting }
  })
