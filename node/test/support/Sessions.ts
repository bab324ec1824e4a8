import { assert } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { newSessionId, type SessionDispatch, type SessionEvent, type SessionResult } from "@paws/core"
import { LiveSessions } from "../../src/session/LiveSessions.ts"
import { leftovers, TestWorld } from "./TestNode.ts"

export const dispatchOf = (script: string, extra: Partial<SessionDispatch> = {}): SessionDispatch => ({
  sessionId: newSessionId(),
  snapshot: "default",
  workload: { type: "script", script },
  resources: { vcpus: 1, memoryMB: 256 },
  timeoutMs: 60_000,
  network: { allowOut: [], credentials: {} },
  ...extra,
})

export const runToEnd = (dispatch: SessionDispatch) =>
  Effect.gen(function* () {
    const sessions = yield* LiveSessions
    const events = Array.from(yield* Stream.runCollect(sessions.run(dispatch)))
    const statuses = events.flatMap((e) => (e._tag === "status" ? [e.status] : []))
    const result = events.find((e): e is Extract<SessionEvent, { _tag: "result" }> => e._tag === "result")?.result
    return { events, statuses, result: result as SessionResult }
  })

export const assertNothingLeft = Effect.gen(function* () {
  const world = yield* TestWorld
  assert.deepStrictEqual(yield* leftovers(world.netns), { taps: [], tables: [], processes: [] })
})
