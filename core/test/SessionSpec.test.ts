import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { SessionSpec } from "../src/SessionSpec.ts"
import { hostMatches, hostPatternProblem } from "../src/HostPattern.ts"

const decode = Schema.decodeUnknownExit(SessionSpec)

describe("SessionSpec", () => {
  it("accepts a full spec", () => {
    const exit = decode({
      snapshot: "default",
      workload: { type: "script", script: "echo hi", env: { FOO: "bar" } },
      resources: { vcpus: 1, memoryMB: 256 },
      timeoutMs: 60000,
      network: {
        allowOut: ["api.anthropic.com", "*.github.com"],
        credentials: { "api.anthropic.com": { headers: { "x-api-key": "k" } } },
      },
    })
    expect(exit._tag).toBe("Success")
  })
  it("rejects CR/LF in a header value and names the field", () => {
    const exit = decode({
      workload: { type: "script", script: "x" },
      network: { allowOut: ["a.example"], credentials: { "a.example": { headers: { "x-k": "a\r\nEvil: 1" } } } },
    })
    expect(exit._tag).toBe("Failure")
    expect(String(exit)).toContain("CR, LF")
  })
})

describe("HostPattern", () => {
  it("rejects IPs, URLs and empty", () => {
    expect(hostPatternProblem("")).toBeDefined()
    expect(hostPatternProblem("1.2.3.4")).toContain("IP")
    expect(hostPatternProblem("https://a.example")).toContain("URL")
    expect(hostPatternProblem("*.example.com")).toBeUndefined()
  })
  it("wildcards do not match the apex", () => {
    expect(hostMatches("*.example.com", "a.example.com")).toBe(true)
    expect(hostMatches("*.example.com", "example.com")).toBe(false)
    expect(hostMatches("*.example.com", "evilexample.com")).toBe(false)
  })
})
