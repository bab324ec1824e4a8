import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { makeBatcher } from "../src/Batcher.ts"

describe("Batcher", () => {
  it.live("runs a lone call at once and groups calls that arrive while batches are in flight", () =>
    Effect.gen(function* () {
      const batches: Array<ReadonlyArray<number>> = []
      const submit = yield* makeBatcher(
        (items: ReadonlyArray<number>) =>
          Effect.sleep(20).pipe(Effect.andThen(Effect.sync(() => {
            batches.push(items)
            return items.map((n) => n * 10)
          }))),
        { maxBatch: 8, maxInflight: 1 },
      )
      assert.strictEqual(yield* submit(1), 10)
      assert.deepStrictEqual(batches, [[1]])
      const results = yield* Effect.all(Array.from({ length: 20 }, (_, i) => submit(i)), { concurrency: "unbounded" })
      assert.deepStrictEqual(results, Array.from({ length: 20 }, (_, i) => i * 10), "each caller gets its own result")
      const later = batches.slice(1)
      assert.isTrue(later.every((b) => b.length <= 8))
      assert.isBelow(later.length, 20, "concurrent calls shared batches")
      assert.deepStrictEqual(later.flat().sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i))
    }))

  it.live("a failing batch fails every call in it, and the batcher keeps working", () =>
    Effect.gen(function* () {
      let fail = true
      const submit = yield* makeBatcher(
        (items: ReadonlyArray<string>) => fail ? Effect.die(new Error("database gone")) : Effect.succeed(items),
        { maxBatch: 4, maxInflight: 2 },
      )
      const exits = yield* Effect.all(["a", "b", "c"].map((s) => Effect.exit(submit(s))), { concurrency: "unbounded" })
      assert.isTrue(exits.every(Exit.isFailure))
      fail = false
      assert.strictEqual(yield* submit("d"), "d")
    }))
})
