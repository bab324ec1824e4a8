import { assert, describe, it } from "@effect/vitest"
import type { NodeSessionEvent } from "@paws/core"
import { Effect, Fiber, Stream } from "effect"
import { makeSessionFeed } from "../src/session/SessionFeed.ts"

const status = (s: "starting" | "running" | "completed"): NodeSessionEvent => ({ _tag: "status", status: s, at: s })
const out = (data: string): NodeSessionEvent => ({ _tag: "output", stream: "stdout", data })
const result: NodeSessionEvent = {
  _tag: "result",
  result: { exitCode: 0, stdout: "x\n", stderr: "", output: null, truncated: false },
}
const label = (e: NodeSessionEvent) => e._tag === "status" ? e.status : e._tag === "output" ? `out:${e.data}` : e._tag

/** Follows the feed until `n` events arrived, then goes away (as a replica that died), returning them. */
const takeThenLeave = (stream: Stream.Stream<NodeSessionEvent>, n: number) =>
  Stream.runCollect(Stream.take(stream, n)).pipe(Effect.map((es) => [...es].map(label)))

describe("SessionFeed: a session outlives the replica that followed it", () => {
  it.effect("events emitted while nobody follows are held; a replica taking over first gets the statuses it may have missed", () =>
    Effect.gen(function* () {
      let orphaned = 0
      const feed = makeSessionFeed(60_000, Effect.sync(() => orphaned++))
      const first = yield* Effect.forkChild(takeThenLeave(feed.follow(false), 2))
      yield* Effect.yieldNow
      feed.emit(status("starting"))
      feed.emit(status("running"))
      assert.deepStrictEqual(yield* Fiber.join(first), ["starting", "running"])
      assert.isTrue(feed.unfollowed())
      // Lost with the replica that went away: nothing. Emitted while nobody follows: held.
      feed.emit(out("a"))
      feed.emit(result)
      feed.emit(status("completed"))
      feed.end()
      const taken = yield* Stream.runCollect(feed.follow(true))
      // The statuses the gone follower had (lost with it, maybe) come first, so that `running` precedes the held
      // `completed` (the store would refuse starting → completed); then the held events, none twice.
      assert.deepStrictEqual([...taken].map(label), ["starting", "running", "out:a", "result", "completed"])
      assert.strictEqual(orphaned, 0)
    }))

  it.effect("a replica taking over mid-run learns the status it may have missed, then follows live to the end", () =>
    Effect.gen(function* () {
      const feed = makeSessionFeed(60_000, Effect.void)
      const first = yield* Effect.forkChild(takeThenLeave(feed.follow(false), 2))
      yield* Effect.yieldNow
      feed.emit(status("starting"))
      feed.emit(status("running"))
      yield* Fiber.join(first)
      const second = yield* Effect.forkChild(Stream.runCollect(feed.follow(true)))
      yield* Effect.yieldNow
      feed.emit(out("live"))
      feed.emit(status("completed"))
      feed.end()
      assert.deepStrictEqual(
        [...(yield* Fiber.join(second))].map(label),
        ["starting", "running", "out:live", "completed"],
      )
    }))

  it.effect("nobody takes over within the grace: orphaned is called once", () =>
    Effect.gen(function* () {
      let orphaned = 0
      const feed = makeSessionFeed(50, Effect.sync(() => orphaned++))
      const first = yield* Effect.forkChild(takeThenLeave(feed.follow(false), 1))
      yield* Effect.yieldNow
      feed.emit(status("starting"))
      yield* Fiber.join(first)
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 150)))
      assert.strictEqual(orphaned, 1)
    }))

  it.effect("a follower arriving within the grace cancels the orphaning", () =>
    Effect.gen(function* () {
      let orphaned = 0
      const feed = makeSessionFeed(100, Effect.sync(() => orphaned++))
      const first = yield* Effect.forkChild(takeThenLeave(feed.follow(false), 1))
      yield* Effect.yieldNow
      feed.emit(status("starting"))
      yield* Fiber.join(first)
      const second = yield* Effect.forkChild(Stream.runCollect(feed.follow(true)))
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
      assert.strictEqual(orphaned, 0)
      feed.end()
      yield* Fiber.join(second)
    }))

  it.effect("a session whose dispatching stream never followed it is orphaned after the grace too", () =>
    Effect.gen(function* () {
      let orphaned = 0
      makeSessionFeed(50, Effect.sync(() => orphaned++))
      const followed = makeSessionFeed(50, Effect.sync(() => orphaned += 10))
      const fiber = yield* Effect.forkChild(Stream.runCollect(followed.follow(false)))
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 150)))
      assert.strictEqual(orphaned, 1, "the unfollowed feed once; the followed one not")
      followed.end()
      yield* Fiber.join(fiber)
    }))
})
