// Governance of MCP tool calls, without a VM: real curl through the real proxy process to the
// node's gateway and a real stdio MCP server. `approve` tools wait for a human (approve, deny, no
// decision in time); a server's maxCallsPerMinute refuses calls over it. Plus the token bucket's
// refill, on a fake clock.
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { McpToolCallEvent } from "@paws/core"
import { makeMcpCallGovernor } from "../src/mcp/McpCallGovernor.ts"
import type { McpHeldCall } from "../src/mcp/McpCallGovernor.ts"
import { startMcpGateway } from "../src/mcp/McpGateway.ts"
import { curl } from "../../proxy/test/support/Clients.ts"
import { startProxyProcess } from "../../proxy/test/support/ProxyProcess.ts"

const serverScript = fileURLToPath(new URL("./support/mcp-test-server.ts", import.meta.url))
const stdio = { transport: "stdio" as const, command: process.execPath, args: [serverScript] }

describe("MCP tool call governance", () => {
  it.live(
    "approve tools wait for a human; maxCallsPerMinute refuses calls over it",
    () =>
      Effect.scoped(Effect.gen(function* () {
        const events: Array<McpToolCallEvent> = []
        const held: Array<McpHeldCall> = []
        // What the "human" does with each held call, in order; "wait" lets it time out.
        const plan: Array<"approve" | "deny" | "wait"> = ["approve", "deny", "wait"]
        const gateway = yield* startMcpGateway({
          sessionId: "00000000-0000-7000-8000-000000000002",
          servers: [
            { name: "tools", ...stdio, auditArguments: true, approve: ["echo"] },
            { name: "limited", ...stdio, maxCallsPerMinute: 3 },
          ],
          onToolCall: (e) => events.push(e),
          approvals: {
            timeoutMs: 2000,
            onHeld: (h) => {
              held.push(h)
              const step = plan.shift()
              if (step !== "wait") setImmediate(() => gateway.decide(h.requestId, step === "approve"))
            },
          },
        })
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() =>
            startProxyProcess({
              listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
              dnsAnswer: "127.0.0.1",
              allowOut: [],
              credentials: {},
              mcpGateway: { socketPath: gateway.socketPath, servers: ["tools", "limited"] },
            })
          ),
          (p) => Effect.promise(() => p.stop()),
        )
        const caFile = join(mkdtempSync(join(tmpdir(), "paws-mcp-gov-")), "ca.pem")
        writeFileSync(caFile, proxy.caPem)
        const call = (server: string, id: number, name: string, args: Record<string, unknown> = {}) =>
          Effect.promise(() =>
            curl([
              "--resolve",
              `mcp.paws.internal:${proxy.ports.https}:127.0.0.1`,
              "--cacert",
              caFile,
              "-H",
              "content-type: application/json",
              "-H",
              "accept: application/json, text/event-stream",
              "--data-binary",
              JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } }),
              `https://mcp.paws.internal:${proxy.ports.https}/${server}`,
            ])
          ).pipe(Effect.map((r) => JSON.parse(r.body)))

        // A tool without `approve` runs at once; no human is asked.
        const free = yield* call("tools", 1, "secret_hash")
        assert.isDefined(free.result, JSON.stringify(free))
        assert.lengthOf(held, 0)

        const approved = yield* call("tools", 2, "echo", { text: "hello ship it" })
        assert.strictEqual(approved.result?.content[0].text, "hello ship it", JSON.stringify(approved))
        const denied = yield* call("tools", 3, "echo", { text: "not this one" })
        assert.include(denied.error?.message, "tool echo of tools was refused: a human denied it")
        const timedOut = yield* call("tools", 4, "echo", { text: "nobody looks" })
        assert.include(timedOut.error?.message, "tool echo of tools was refused: no human approved it within 2s")

        assert.lengthOf(held, 3)
        assert.deepStrictEqual(
          { ...held[0]!, requestId: "-" },
          {
            requestId: "-",
            rule: "mcp tools/echo (approve)",
            host: "mcp.paws.internal",
            method: "tools/call",
            path: "/tools/echo",
          },
        )
        assert.notInclude(JSON.stringify(held), "ship it", "arguments are not shown to the approver")
        assert.strictEqual(new Set(held.map((h) => h.requestId)).size, 3)
        assert.isFalse(gateway.decide(held[2]!.requestId, true), "a timed-out call is no longer held")
        assert.isFalse(gateway.decide("not-a-held-call", true), "unknown ids are left to the proxy")

        // maxCallsPerMinute 3: three calls pass, the fourth is refused (a token returns every 20 s).
        for (let id = 10; id < 13; id++) {
          const ok = yield* call("limited", id, "secret_hash")
          assert.isDefined(ok.result, JSON.stringify(ok))
        }
        const over = yield* call("limited", 13, "secret_hash")
        assert.include(over.error?.message, "rate limited: MCP server limited allows 3 tool calls per minute")
        assert.include(over.error?.message, "maxCallsPerMinute")
        // Another server of the session has its own budget.
        const other = yield* call("tools", 14, "secret_hash")
        assert.isDefined(other.result, JSON.stringify(other))

        assert.deepStrictEqual(events.map((e) => [e.server, e.tool, e.decision, e.error]), [
          ["tools", "secret_hash", "allowed", undefined],
          ["tools", "echo", "allowed", undefined],
          ["tools", "echo", "refused", "a human denied it"],
          ["tools", "echo", "refused", "no human approved it within 2s"],
          ["limited", "secret_hash", "allowed", undefined],
          ["limited", "secret_hash", "allowed", undefined],
          ["limited", "secret_hash", "allowed", undefined],
          [
            "limited",
            "secret_hash",
            "refused",
            "rate limited: MCP server limited allows 3 tool calls per minute (maxCallsPerMinute)",
          ],
          ["tools", "secret_hash", "allowed", undefined],
        ])
      })),
    60_000,
  )

  it("the rate limit is a token bucket: bursts up to the limit, one call back every 60/limit seconds", () =>
    Effect.promise(async () => {
      let clock = 0
      const governor = makeMcpCallGovernor(
        [{ name: "s", transport: "http", maxCallsPerMinute: 2 }],
        undefined,
        () => clock,
      )
      const admit = () => governor.admit({ server: "s", tool: "t" }).then((v) => v.allow)
      assert.deepStrictEqual([await admit(), await admit(), await admit()], [true, true, false])
      clock += 29_000
      assert.isFalse(await admit(), "not yet a whole token back")
      clock += 1_000
      assert.deepStrictEqual([await admit(), await admit()], [true, false])
      clock += 10 * 60_000
      assert.deepStrictEqual([await admit(), await admit(), await admit()], [true, true, false], "capped at the limit")
    }))

  it("a held call is refused when the session ends, and without approval options at once", () =>
    Effect.promise(async () => {
      const servers = [{ name: "s", transport: "http" as const, approve: ["t"] }]
      const governor = makeMcpCallGovernor(servers, { timeoutMs: 3_600_000, onHeld: () => {} })
      const pending = governor.admit({ server: "s", tool: "t" })
      governor.close()
      assert.deepStrictEqual(await pending, { allow: false, reason: "the session ended" })
      const unasked = await makeMcpCallGovernor(servers, undefined).admit({ server: "s", tool: "t" })
      assert.isFalse(unasked.allow)
      assert.deepStrictEqual(await governor.admit({ server: "s", tool: "other" }), { allow: true })
    }))
})
