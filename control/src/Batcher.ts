import { Cause, Deferred, Effect, Exit, type Scope } from "effect"

/**
 * Group commit for concurrent callers: each `submit` joins the next batch; at most
 * `maxInflight` batches run at once and a batch takes everything queued (up to `maxBatch`).
 * Idle, a call runs alone at once; under load, calls that arrive while batches are in flight
 * share one statement and one commit, which is what makes creates cheap at high rates.
 */
export const makeBatcher = <A, B>(
  run: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>>,
  options: { readonly maxBatch: number; readonly maxInflight: number },
): Effect.Effect<(item: A) => Effect.Effect<B>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const queue: Array<{ item: A; deferred: Deferred.Deferred<B> }> = []
    let inflight = 0

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      const batch = queue.splice(0, options.maxBatch)
      if (batch.length === 0) {
        inflight -= 1
        return Effect.void
      }
      return Effect.exit(run(batch.map((b) => b.item))).pipe(
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            batch.forEach((b, i) =>
              Deferred.doneUnsafe(
                b.deferred,
                Exit.isSuccess(exit)
                  ? (exit.value.length === batch.length
                    ? Exit.succeed(exit.value[i]!)
                    : Exit.die(new Error("batch result count mismatch")))
                  : Exit.failCause(exit.cause as Cause.Cause<never>),
              )
            )
          })
        ),
        // Whatever queued meanwhile goes next, in this same slot.
        Effect.andThen(flush),
      )
    })

    return (item: A) =>
      Effect.suspend(() => {
        const deferred = Deferred.makeUnsafe<B>()
        queue.push({ item, deferred })
        const start = inflight < options.maxInflight
          ? Effect.sync(() => void (inflight += 1)).pipe(Effect.andThen(Effect.forkIn(flush, scope)))
          : Effect.void
        return Effect.andThen(start, Deferred.await(deferred))
      })
  })
