import { describe, expect, it } from "@effect/vitest"
import { credentialProblems, credentialWarnings, isPublicSuffixShaped } from "../src/CredentialPolicy.ts"

const rule = (value: string) => ({ headers: { "x-api-key": value } })

describe("credential policy", () => {
  it("refuses secrets shorter than 8 characters, not counting an auth scheme", () => {
    const problems = credentialProblems({
      allowOut: ["a.example.com"],
      credentials: {
        "a.example.com": { headers: { "x-api-key": "1234567", authorization: "Bearer 1234567", ok: "12345678" } },
      },
    })
    expect(problems.map((p) => p.path)).toEqual([
      "network.credentials.a.example.com.headers.x-api-key",
      "network.credentials.a.example.com.headers.authorization",
    ])
  })

  it("refuses wildcard credentials unless allowWildcardCredential is true", () => {
    const network = { allowOut: ["*.example.com"], credentials: { "*.example.com": rule("sk-long-enough") } }
    expect(credentialProblems(network)).toEqual([{
      path: "network.credentials.*.example.com",
      message: expect.stringContaining('"network.allowWildcardCredential": true'),
    }])
    expect(credentialProblems({ ...network, allowWildcardCredential: true })).toEqual([])
  })

  it("warns on wildcard credentials over public-suffix-shaped domains only", () => {
    for (const s of ["co.uk", "github.io", "com.au", "co.jp", "org.za", "GitHub.IO"]) {
      expect(isPublicSuffixShaped(s), s).toBe(true)
    }
    for (const s of ["example.com", "api.github.com", "anthropic.com", "corp.example.co.uk"]) {
      expect(isPublicSuffixShaped(s), s).toBe(false)
    }
    const credentials = { "*.github.io": rule("sk-long-enough"), "*.example.com": rule("sk-long-enough") }
    const warnings = credentialWarnings({ allowOut: [], credentials, allowWildcardCredential: true })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain("network.credentials.*.github.io")
  })
})
