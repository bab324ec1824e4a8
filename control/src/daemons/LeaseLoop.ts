import { Effect } from "effect"
import type { Scope } from "effect"
import { DaemonStore } from "./DaemonStore.ts"

/**
 * Runs `pass` every `everyMs` on whichever control replica holds the lease `name` in the database
 * (taken when free or expired, renewed on each pass), so several replicas never run it at once.
 * Failures are logged and the loop goes on; it ends with the scope.
 */
export const leaseLoop = (
  name: string,
  holder: string,
  o: { readonly everyMs: number; readonly leaseMs: number },
  pass: Effect.Effect<void>,
): Effect.Effect<void, never, DaemonStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* DaemonStore
    const once = Effect.gen(function* () {
      if (yield* store.lease(name, holder, o.leaseMs)) yield* pass
    }).pipe(Effect.catchCause((cause) => Effect.logError(`${name} pass failed`, cause)))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(once, Effect.sleep(o.everyMs))))
  })
