import { assert, describe, it } from "@effect/vitest"
import { newSessionId } from "@paws/core"
import { execFileSync } from "node:child_process"
import { guestWorkload, placeholderApiKey } from "../src/session/AgentWorkload.ts"

describe("agent workload → guest script", () => {
  it("a script workload passes through unchanged", () => {
    const w = guestWorkload({ type: "script", script: "echo hi", env: { A: "1" } }, newSessionId())
    assert.deepStrictEqual(w, { script: "echo hi", env: { A: "1" } })
  })

  it("claude-code runs non-interactively with the per-session placeholder key, never a user-set one", () => {
    const sessionId = newSessionId()
    const w = guestWorkload({
      type: "agent",
      prompt: "say 'hi' \"$HOME\" `x`\n$(rm -rf /)",
      model: "claude-x",
      maxTurns: 4,
      env: { ANTHROPIC_API_KEY: "sk-ant-real", OTHER: "kept" },
    }, sessionId)
    assert.strictEqual(w.env?.["ANTHROPIC_API_KEY"], placeholderApiKey(sessionId))
    assert.include(w.env?.["ANTHROPIC_API_KEY"], sessionId)
    assert.strictEqual(w.env?.["OTHER"], "kept")
    assert.notInclude(w.script, "sk-ant-real")
    for (const arg of ["'claude' '-p'", "'stream-json'", "'--model' 'claude-x'", "'--max-turns' '4'"]) {
      assert.include(w.script, arg)
    }
    assert.include(w.script, "bypassPermissions")
    // the prompt reaches the agent byte for byte: its first line decodes it
    const decode = w.script.split("\n")[0]!.replace("> /tmp/paws-agent-prompt", "")
    assert.strictEqual(execFileSync("sh", ["-c", decode], { encoding: "utf8" }), "say 'hi' \"$HOME\" `x`\n$(rm -rf /)")
  })

  it("a custom agent runs its argv with the prompt on stdin and the placeholder key", () => {
    const sessionId = newSessionId()
    const w = guestWorkload(
      { type: "agent", agent: "custom", prompt: "it's me", command: ["sh", "-c", `tr a-z A-Z; echo "$0"`, "x y"] },
      sessionId,
    )
    assert.strictEqual(w.env?.["ANTHROPIC_API_KEY"], placeholderApiKey(sessionId))
    assert.strictEqual(execFileSync("sh", ["-c", w.script], { encoding: "utf8" }), "IT'S MEx y\n") // the prompt as given, no newline added
  })

  it("an explicit tool list replaces the bypass", () => {
    const w = guestWorkload({ type: "agent", prompt: "x", allowedTools: ["Bash(ls:*)", "Read"] }, newSessionId())
    assert.include(w.script, "'--allowedTools' 'Bash(ls:*)' 'Read'")
    assert.notInclude(w.script, "bypassPermissions")
  })
})
