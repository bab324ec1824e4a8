import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { keepUpUntil, type PauseHolder } from "../src/session/SessionPauses.ts"

// The kept-alive phase's decisions without a VM: SessionRunner supplies the real save (PausedVms)
// and node/test/pause.test.ts runs it against real VMs.
const phase = (o: {
  holder: PauseHolder
  save: Parameters<typeof keepUpUntil>[0]["save"]
  deadlineInMs?: number
  idleMs?: number
  lastActive?: () => number
  conts?: Array<string>
}) =>
  keepUpUntil({
    holder: o.holder,
    sessionId: "s-1",
    deadline: Date.now() + (o.deadlineInMs ?? 60_000),
    died: Effect.never,
    save: o.save,
    cont: Effect.sync(() => void o.conts?.push("cont")),
    idleMs: o.idleMs ?? 0,
    lastActive: o.lastActive ?? Date.now,
  }).pipe(Effect.scoped)

const requested = (holder: PauseHolder) =>
  Effect.gen(function* () {
    while (holder.request === undefined) yield* Effect.sleep(5)
    return yield* Effect.exit(holder.request)
  })

describe("a live session's kept-alive phase (SessionPauses)", () => {
  it.live("a pause asked for is saved and ends the phase as paused; the holder is cleared after", () =>
    Effect.gen(function* () {
      const holder: PauseHolder = {}
      const saves: Array<string> = []
      const fiber = yield* Effect.forkChild(phase({ holder, save: Effect.sync(() => void saves.push("saved")) }))
      const asked = yield* requested(holder)
      assert.strictEqual(asked._tag, "Success")
      assert.strictEqual(yield* Fiber.join(fiber), "paused")
      assert.deepStrictEqual(saves, ["saved"])
      assert.isUndefined(holder.request)
    }))

  it.live("a VM that cannot be paused says why and runs on; a failed save runs the VM again and says why", () =>
    Effect.gen(function* () {
      const cold: PauseHolder = {}
      const fiber = yield* Effect.forkChild(phase({ holder: cold, save: "its VM was cold-booted", deadlineInMs: 400 }))
      const refused = yield* requested(cold)
      assert.strictEqual(refused._tag, "Failure")
      assert.include(JSON.stringify(refused), "its VM was cold-booted")
      assert.strictEqual(yield* Fiber.join(fiber), "deadline")

      const failing: PauseHolder = {}
      const conts: Array<string> = []
      const second = yield* Effect.forkChild(
        phase({ holder: failing, save: Effect.fail({ message: "disk full" }), deadlineInMs: 400, conts }),
      )
      const failed = yield* requested(failing)
      assert.include(JSON.stringify(failed), "saving the VM failed: disk full")
      assert.deepStrictEqual(conts, ["cont"])
      assert.strictEqual(yield* Fiber.join(second), "deadline")
    }))

  it.live("idle: no traffic for idleMs pauses it; traffic (or an open stream, lastActive = now) keeps it up", () =>
    Effect.gen(function* () {
      const t0 = Date.now()
      const idle = yield* phase({ holder: {}, save: Effect.void, idleMs: 300, lastActive: () => t0 })
      assert.strictEqual(idle, "paused")
      assert.isAtLeast(Date.now() - t0, 290)
      const busy = yield* phase({ holder: {}, save: Effect.void, idleMs: 300, deadlineInMs: 900, lastActive: Date.now })
      assert.strictEqual(busy, "deadline")
    }))

  it.live("a pause asked for as the phase ends is answered, not left waiting", () =>
    Effect.gen(function* () {
      const holder: PauseHolder = {}
      const fiber = yield* Effect.forkChild(phase({ holder, save: Effect.never, deadlineInMs: 300 }))
      const asked = yield* requested(holder)
      assert.strictEqual(yield* Fiber.join(fiber), "deadline")
      assert.include(JSON.stringify(asked), "the session ended meanwhile")
    }))
})
