import { assert, describe, it } from "@effect/vitest"
import { githubMatches } from "../src/daemons/GithubFilters.ts"

describe("GitHub filters", () => {
  it("match a comment body with the filter's pattern", () => {
    const filters = [{ event: "issue_comment", action: "created", bodyPattern: "^/paws (run|retry)\\b" }]
    assert.isTrue(githubMatches(filters, "issue_comment", { action: "created", comment: { body: "/paws run now" } }))
    assert.isFalse(githubMatches(filters, "issue_comment", { action: "created", comment: { body: "/paws runs" } }))
    assert.isFalse(githubMatches(filters, "issue_comment", { action: "edited", comment: { body: "/paws run" } }))
  })

  it("answer a pattern that backtracks exponentially in a RegExp (linear-time engine)", () => {
    // With `new RegExp`, this pattern on this body takes longer than the test runner's timeout.
    const filters = [{ event: "issue_comment", bodyPattern: "^(a+)+$" }]
    const body = "a".repeat(50_000) + "!"
    assert.isFalse(githubMatches(filters, "issue_comment", { comment: { body } }))
    assert.isTrue(githubMatches(filters, "issue_comment", { comment: { body: "aaaa" } }))
  })
})
