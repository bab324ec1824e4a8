import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Option } from "effect"
import type { SessionStatus } from "@paws/core"
import { reportQueuePosition } from "../src/QueueProgress.ts"

describe("paws run while its session waits in the queue", () => {
  it.effect("prints the queue position when it changes and stops once the session leaves the queue", () =>
    Effect.gen(function* () {
      const replies: Array<{ status: SessionStatus; queuePosition?: number }> = [
        { status: "pending", queuePosition: 3 },
        { status: "pending", queuePosition: 3 },
        { status: "pending", queuePosition: 1 },
        { status: "starting" },
        { status: "pending", queuePosition: 9 }, // never read: the report ended
      ]
      let reads = 0
      const get = Effect.sync(() => Option.some(replies[reads++]!))
      const lines: Array<unknown> = []
      const console: Console.Console = Object.assign(Object.create(globalThis.console), {
        error: (...args: ReadonlyArray<unknown>) => lines.push(...args),
      })
      yield* reportQueuePosition("s1", get, 0).pipe(Effect.provideService(Console.Console, console))
      assert.deepStrictEqual(lines, [
        "session s1 queued: position 3 (waiting for a free node)",
        "session s1 queued: position 1 (waiting for a free node)",
      ])
      assert.strictEqual(reads, 4)
    }))
})
