import { assert, layer } from "@effect/vitest"
import { createHash } from "node:crypto"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { mirrorNodeLayer } from "./support/MirrorWorld.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"

const serverScript = fileURLToPath(new URL("./support/mcp-test-server.ts", import.meta.url))
const secret = `mcp-agent-secret-${crypto.randomUUID()}`
const secretHash = createHash("sha256").update(secret).digest("hex")

/**
 * The real Claude Code CLI in a claude-agent VM, configured by the node with the session's MCP
 * server, against a fake Messages API that asks for the MCP tool it is offered.
 */
layer(mirrorNodeLayer(["claude-agent"]), { excludeTestServices: true, timeout: 900_000 })(
  "agent with MCP servers (real VM, real Claude Code, fake API)",
  (it) => {
    it.effect(
      "claude-code is given the session's MCP server and calls its tool through the gateway",
      () =>
        Effect.gen(function* () {
          const dispatch = dispatchOf("", {
            snapshot: "claude-agent",
            workload: {
              type: "agent",
              agent: "claude-code",
              prompt: "Hash the secret.",
              maxTurns: 3,
              // MCP tools in the request's tool list, not deferred behind tool search: the fake API picks them there.
              env: { ENABLE_TOOL_SEARCH: "false" },
            },
            resources: { vcpus: 2, memoryMB: 2048 },
            timeoutMs: 300_000,
            network: {
              allowOut: ["api.anthropic.com"],
              credentials: { "api.anthropic.com": { headers: { "x-api-key": `sk-ant-${crypto.randomUUID()}` } } },
            },
            mcp: [{
              name: "tools",
              transport: "stdio",
              command: process.execPath,
              args: [serverScript],
              env: { PAWS_TEST_MCP_SECRET: secret },
              tools: ["secret_hash"],
            }],
          })
          const { statuses, result, events } = yield* runToEnd(dispatch)
          assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result).slice(-3000))
          const init = result.stdout.split("\n")[0] ?? ""
          assert.include(init, "mcp__tools__secret_hash", "Claude Code connected to the gateway and lists the tool")
          assert.strictEqual(result.output, `FINAL ANSWER: ${secretHash}`, init)
          const calls = events.flatMap((e) => (e._tag === "mcp" ? [[e.event.tool, e.event.decision]] : []))
          assert.deepStrictEqual(calls, [["secret_hash", "allowed"]])
          assert.notInclude(result.stdout + result.stderr, secret)
          yield* assertNothingLeft
        }),
      300_000,
    )
  },
)
