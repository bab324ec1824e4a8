import { Deferred, Effect, Queue } from "effect"
import type { Scope } from "effect"
import { SessionNotPausable } from "@paws/core"

/** Set by the runner while its session may be paused (kept alive, guest up); LiveSessions calls it. */
export interface PauseHolder {
  request?: Effect.Effect<void, SessionNotPausable>
}

/**
 * A live session's kept-alive phase: up to its deadline, unless its VM or proxy dies (fails) or
 * a pause is asked for (`holder.request`, or its own idle timer) and its VM is saved ("paused").
 * A save that fails answers the asker with the reason and the VM runs on.
 */
export const keepUpUntil = (o: {
  readonly holder: PauseHolder
  readonly sessionId: string
  /** Epoch ms the session's running time is spent. */
  readonly deadline: number
  readonly died: Effect.Effect<never, unknown>
  /** Why this VM cannot be paused (cold-booted), or its save. */
  readonly save: string | Effect.Effect<void, { readonly message: string }>
  /** Runs the VM again after a failed save (it was stopped for it). */
  readonly cont: Effect.Effect<void>
  /** Auto-pause: ms without guest traffic (LiveSessions' activity) after which the session pauses; 0 = never. */
  readonly idleMs: number
  readonly lastActive: () => number
}): Effect.Effect<"deadline" | "paused", unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const notPausable = (message: string) => new SessionNotPausable({ sessionId: o.sessionId, message })
    const requests = yield* Queue.unbounded<Deferred.Deferred<void, SessionNotPausable>>()
    /** Every request not yet answered: the phase ending (deadline, VM died, cancel) answers them. */
    const pending = new Set<Deferred.Deferred<void, SessionNotPausable>>()
    const ask = Effect.gen(function* () {
      const done = yield* Deferred.make<void, SessionNotPausable>()
      pending.add(done)
      yield* Queue.offer(requests, done)
      return done
    })
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        o.holder.request = Effect.flatMap(ask, Deferred.await)
      }),
      () =>
        Effect.gen(function* () {
          delete o.holder.request
          for (const done of pending) yield* Deferred.fail(done, notPausable("the session ended meanwhile"))
        }),
    )
    const serve = Effect.gen(function* () {
      for (;;) {
        const done = yield* Queue.take(requests)
        if (typeof o.save === "string") {
          pending.delete(done)
          yield* Deferred.fail(done, notPausable(o.save))
          continue
        }
        const saved = yield* Effect.exit(o.save)
        pending.delete(done)
        if (saved._tag === "Success") {
          yield* Deferred.succeed(done, undefined)
          return "paused" as const
        }
        yield* o.cont
        const why = saved.cause.reasons.find((r) => r._tag === "Fail")
        yield* Deferred.fail(
          done,
          notPausable(`saving the VM failed: ${why?._tag === "Fail" ? why.error.message : "defect"}`),
        )
      }
    })
    // Idle: no exec, file, shell or port traffic for idleMs (a running exec or shell counts as traffic).
    if (o.idleMs > 0 && typeof o.save !== "string") {
      const since = Date.now() // idle counts from when the session is up, not from its admission
      yield* Effect.forkScoped(Effect.gen(function* () {
        for (;;) {
          const wait = Math.max(o.lastActive(), since) + o.idleMs - Date.now()
          if (wait <= 0) break
          yield* Effect.sleep(wait)
        }
        yield* Effect.logInfo(`session ${o.sessionId} idle for ${o.idleMs} ms: pausing`)
        yield* ask
      }))
    }
    return yield* Effect.sleep(Math.max(0, o.deadline - Date.now())).pipe(
      Effect.as("deadline" as const),
      Effect.raceFirst(serve),
      Effect.raceFirst(o.died),
    )
  })
