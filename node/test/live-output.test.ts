import { assert, describe, it } from "@effect/vitest"
import { setTimeout as sleep } from "node:timers/promises"
import { LiveOutput } from "../src/session/LiveOutput.ts"

describe("LiveOutput", () => {
  it("emits the first chunk at once and merges a flood of tiny chunks into one event per interval", async () => {
    const events: Array<[string, string]> = []
    const live = new LiveOutput((stream, data) => void events.push([stream, data]), 40)
    live.push("stdout", "first")
    assert.deepStrictEqual(events, [["stdout", "first"]])
    // 10 000 one-byte chunks right after: one event, not ten thousand
    for (let i = 0; i < 10_000; i++) live.push("stdout", "x")
    live.push("stderr", "e") // the other stream has its own interval
    assert.deepStrictEqual(events, [["stdout", "first"], ["stderr", "e"]])
    await sleep(80)
    assert.deepStrictEqual(events, [["stdout", "first"], ["stderr", "e"], ["stdout", "x".repeat(10_000)]])
    live.push("stdout", "tail")
    live.push("stdout", "")
    live.end()
    assert.deepStrictEqual(events.at(-1), ["stdout", "tail"])
    assert.strictEqual(events.length, 4)
    await sleep(80) // no timer left behind
    assert.strictEqual(events.length, 4)
  })
})
