import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { makeStartTurns } from "../src/session/StartTurns.ts"

/** A start: takes a turn, records how many hold one, waits for `go`, then hands the turn on (or not). */
const starter = (
  turns: Effect.Success<ReturnType<typeof makeStartTurns>>,
  state: { holding: number; most: number },
  go: Deferred.Deferred<void>,
  handBack: boolean,
) =>
  Effect.scoped(Effect.gen(function* () {
    const done = yield* turns.take
    state.holding++
    state.most = Math.max(state.most, state.holding)
    yield* Deferred.await(go)
    state.holding--
    if (handBack) yield* done
    // What follows a handed-back turn (the session's running time) must not hold the turn.
    yield* Effect.yieldNow
  }))

describe("StartTurns: a node starts a few sessions at a time, the rest wait their turn", () => {
  it.effect("never more than N at once; every waiter gets its turn", () =>
    Effect.gen(function* () {
      const turns = yield* makeStartTurns(2)
      const state = { holding: 0, most: 0 }
      const go = yield* Deferred.make<void>()
      const fibers = yield* Effect.forEach(
        Array.from({ length: 6 }),
        () => Effect.forkChild(starter(turns, state, go, true)),
      )
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.strictEqual(state.holding, 2)
      assert.strictEqual(turns.waiting(), 4)
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.joinAll(fibers)
      assert.strictEqual(state.most, 2)
      assert.strictEqual(turns.waiting(), 0)
    }))

  it.effect("a start that fails (its scope closes without `done`) hands its turn on; `done` twice releases once", () =>
    Effect.gen(function* () {
      const turns = yield* makeStartTurns(1)
      yield* Effect.scoped(Effect.flatMap(turns.take, (done) => Effect.andThen(done, done)))
      yield* Effect.scoped(turns.take).pipe(Effect.andThen(Effect.fail("start failed")), Effect.ignore)
      // Still exactly one turn: two takers at once, the second waits.
      const go = yield* Deferred.make<void>()
      const state = { holding: 0, most: 0 }
      const a = yield* Effect.forkChild(starter(turns, state, go, false))
      const b = yield* Effect.forkChild(starter(turns, state, go, false))
      yield* Effect.yieldNow
      assert.strictEqual(turns.waiting(), 1)
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.joinAll([a, b])
      assert.strictEqual(state.most, 1)
    }))

  it.effect("a session cancelled while waiting leaves the line without taking a turn", () =>
    Effect.gen(function* () {
      const turns = yield* makeStartTurns(1)
      const go = yield* Deferred.make<void>()
      const state = { holding: 0, most: 0 }
      const first = yield* Effect.forkChild(starter(turns, state, go, true))
      yield* Effect.yieldNow
      const cancelled = yield* Effect.forkChild(starter(turns, state, go, true))
      yield* Effect.yieldNow
      assert.strictEqual(turns.waiting(), 1)
      yield* Fiber.interrupt(cancelled)
      assert.strictEqual(turns.waiting(), 0)
      yield* Deferred.succeed(go, undefined)
      yield* Fiber.join(first)
      // The turn is free again: a new start gets it at once.
      const next = yield* Effect.scoped(Effect.flatMap(turns.take, (done) => Effect.as(done, "got it")))
      assert.strictEqual(next, "got it")
      assert.strictEqual(state.most, 1)
    }))
})
