import { describe, expect, it } from "@effect/vitest"
import { canTransition, isTerminal, sessionStatuses, sessionTransitions } from "../src/SessionStatus.ts"
import { makeMonotonicUuidV7, uuidV7 } from "../src/Ids.ts"
import { Schema } from "effect"
import { SessionId } from "../src/Ids.ts"

describe("SessionStatus transitions", () => {
  it("terminal states have no way out", () => {
    for (const s of sessionStatuses) {
      expect(isTerminal(s)).toBe(sessionTransitions[s].length === 0)
    }
  })
  it("allows the happy path and forbids going back to running", () => {
    expect(canTransition("pending", "starting")).toBe(true)
    expect(canTransition("starting", "running")).toBe(true)
    expect(canTransition("running", "completed")).toBe(true)
    expect(canTransition("completed", "cancelled")).toBe(false)
    expect(canTransition("running", "pending")).toBe(false)
    expect(canTransition("pending", "completed")).toBe(false)
  })
  it("awaiting_approval leads only to pending (approved) or cancelled (denied, expired), and nothing returns to it", () => {
    expect(isTerminal("awaiting_approval")).toBe(false)
    expect(sessionTransitions.awaiting_approval).toEqual(["pending", "cancelled"])
    for (const s of sessionStatuses) expect(canTransition(s, "awaiting_approval")).toBe(false)
    expect(canTransition("awaiting_approval", "starting")).toBe(false)
    expect(canTransition("awaiting_approval", "running")).toBe(false)
  })
  it("paused is reached only from running and leads back to running or to an end", () => {
    expect(isTerminal("paused")).toBe(false)
    expect(sessionStatuses.filter((s) => canTransition(s, "paused"))).toEqual(["running"])
    expect(canTransition("paused", "running")).toBe(true)
    for (const end of ["cancelled", "failed", "timeout"] as const) expect(canTransition("paused", end)).toBe(true)
    expect(canTransition("paused", "completed")).toBe(false)
    expect(canTransition("paused", "pending")).toBe(false)
    expect(canTransition("paused", "starting")).toBe(false)
  })
})

describe("SessionId", () => {
  it("is a valid UUIDv7 that sorts by creation", () => {
    const next = makeMonotonicUuidV7(() => 1_700_000_000_000)
    const ids = Array.from({ length: 500 }, () => next())
    expect([...ids].sort()).toEqual(ids)
    for (const id of ids.slice(0, 5)) {
      expect(Schema.decodeUnknownExit(SessionId)(id)._tag).toBe("Success")
    }
  })
  it("encodes the timestamp in the first 48 bits", () => {
    const id = uuidV7(0x0123456789ab)
    expect(id.replaceAll("-", "").slice(0, 12)).toBe("0123456789ab")
    expect(Schema.decodeUnknownExit(SessionId)("not-a-uuid")._tag).toBe("Failure")
  })
})
