import { assert, describe, it } from "@effect/vitest"
import { InFlight } from "../src/guest/InFlight.ts"

describe("InFlight", () => {
  it("pauses the source once the queued bytes (plus a per-chunk overhead) reach the limit, resumes at half", () => {
    const calls: Array<string> = []
    const limit = 10 * 1024
    const inFlight = new InFlight(limit, () => calls.push("pause"), () => calls.push("resume"))
    inFlight.added(4096)
    inFlight.added(4096)
    assert.deepStrictEqual(calls, [])
    inFlight.added(4096) // 12 KiB queued: past the limit
    assert.deepStrictEqual(calls, ["pause"])
    inFlight.added(4096) // already paused: no second call
    inFlight.taken(4096)
    inFlight.taken(4096)
    assert.deepStrictEqual(calls, ["pause"]) // 8 KiB left, above half
    inFlight.taken(4096)
    assert.deepStrictEqual(calls, ["pause", "resume"])
  })

  it("counts empty or tiny chunks by their overhead, so a flood of them pauses too", () => {
    let paused = false
    const inFlight = new InFlight(64 * 1024, () => void (paused = true), () => void (paused = false))
    let chunks = 0
    while (!paused) {
      inFlight.added(1)
      chunks++
    }
    assert.strictEqual(chunks, Math.ceil((64 * 1024) / (1 + InFlight.perChunkOverhead)))
  })
})
