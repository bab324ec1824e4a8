import { describe, expect, it } from "@effect/vitest"
import { defaultSessionLimits, sessionSpecProblems, withSessionDefaults } from "../src/SessionLimits.ts"

const base = { workload: { type: "script" as const, script: "echo hi" } }

describe("sessionSpecProblems", () => {
  it("accepts a spec within limits", () => {
    expect(sessionSpecProblems(base, defaultSessionLimits)).toEqual([])
  })
  it("names each field that exceeds a configured maximum", () => {
    const problems = sessionSpecProblems({
      ...base,
      timeoutMs: defaultSessionLimits.maxTimeoutMs + 1,
      resources: { vcpus: 64, memoryMB: 64 * 1024 },
      workload: { type: "script", script: "x".repeat(defaultSessionLimits.maxScriptBytes + 1) },
    }, defaultSessionLimits)
    expect(problems.map((p) => p.path).sort()).toEqual(
      ["resources.memoryMB", "resources.vcpus", "timeoutMs", "workload.script"],
    )
  })
  it("rejects a credential for a host outside allowOut", () => {
    const problems = sessionSpecProblems({
      ...base,
      network: { allowOut: ["*.example.com"], credentials: { "example.com": { headers: { a: "sk-long-enough" } } } },
    }, defaultSessionLimits)
    expect(problems).toEqual([{
      path: "network.credentials.example.com",
      message: "names a host that is not in network.allowOut; add it there too",
    }])
  })
  it("fills defaults", () => {
    const spec = withSessionDefaults(base, defaultSessionLimits)
    expect(spec.snapshot).toBe("default")
    expect(spec.timeoutMs).toBe(defaultSessionLimits.defaultTimeoutMs)
    expect(spec.network.allowOut).toEqual([])
  })
})
