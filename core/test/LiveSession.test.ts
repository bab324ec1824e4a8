import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { ExecRequest, guestPathProblem, keepsAlive, normalGuestPath, SessionSpec } from "../src/index.ts"

describe("live sessions: guest paths, exec requests, keep-alive", () => {
  it("accepts files under /work, /tmp, /state and /output, normalised", () => {
    for (const p of ["/work/a", "/tmp/x/y.txt", "/state/s", "/output/result.json", "/work//a/"]) {
      expect(guestPathProblem(p), p).toBeUndefined()
    }
    expect(normalGuestPath("/work//a/b/")).toBe("/work/a/b")
  })

  it("refuses relative paths, `..` and `.` segments, the roots themselves and everything outside them", () => {
    const cases: Record<string, RegExp> = {
      "work/a": /absolute/,
      "/work/../etc/passwd": /\.\./,
      "/work/./a": /\.\./,
      "/work": /under one of/,
      "/workspace/a": /under one of/,
      "/etc/passwd": /under one of/,
      "/": /under one of/,
      "/tmp/a\nb": /line breaks/,
    }
    for (const [p, why] of Object.entries(cases)) expect(guestPathProblem(p), p).toMatch(why)
  })

  it("an exec request needs an argv of at least one entry", () => {
    const decode = Schema.decodeUnknownExit(ExecRequest)
    expect(decode({ command: ["ls", "/work"], stdin: "x" })._tag).toBe("Success")
    expect(decode({ command: [] })._tag).toBe("Failure")
    expect(decode({ command: "ls" })._tag).toBe("Failure")
  })

  it("interactive workloads and keepAlive scripts keep the VM up; plain scripts and agents do not", () => {
    const spec = Schema.decodeUnknownSync(SessionSpec)
    expect(keepsAlive(spec({ workload: { type: "interactive" } }).workload)).toBe(true)
    expect(keepsAlive(spec({ workload: { type: "script", script: "x", keepAlive: true } }).workload)).toBe(true)
    expect(keepsAlive(spec({ workload: { type: "script", script: "x" } }).workload)).toBe(false)
    expect(keepsAlive(spec({ workload: { type: "agent", prompt: "p" } }).workload)).toBe(false)
  })
})
