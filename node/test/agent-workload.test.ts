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

  it("an agent is configured with the session's MCP servers (the gateway endpoints), and may call them", () => {
    const w = guestWorkload({ type: "agent", prompt: "x", allowedTools: ["Read"] }, newSessionId(), ["github", "db"])
    assert.include(w.script, "'--mcp-config' '/tmp/paws-mcp.json' '--strict-mcp-config'")
    assert.include(w.script, "'--allowedTools' 'Read' 'mcp__github' 'mcp__db'")
    assert.strictEqual(w.env?.["PAWS_MCP_CONFIG"], "/tmp/paws-mcp.json")
    const line = w.script.split("\n").find((l) => l.includes("/tmp/paws-mcp.json") && l.startsWith("printf"))!
    const config = JSON.parse(
      execFileSync("sh", ["-c", line.replace("> /tmp/paws-mcp.json", "")], { encoding: "utf8" }),
    )
    assert.deepStrictEqual(config, {
      mcpServers: {
        github: { type: "http", url: "https://mcp.paws.internal/github" },
        db: { type: "http", url: "https://mcp.paws.internal/db" },
      },
    })
    const none = guestWorkload({ type: "agent", prompt: "x" }, newSessionId())
    assert.notInclude(none.script, "mcp")
  })
})
