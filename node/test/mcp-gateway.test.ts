// One session's MCP gateway behind the real proxy process, without a VM: real curl and the SDK's
// client speak Streamable HTTP to https://mcp.paws.internal/… through the proxy (its per-session CA),
// which forwards to the node's gateway socket, which bridges to a real stdio MCP server.
import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Agent, fetch as undiciFetch } from "undici"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { McpToolCallEvent } from "@paws/core"
import { startMcpGateway } from "../src/mcp/McpGateway.ts"
import { curl } from "../../proxy/test/support/Clients.ts"
import { startProxyProcess } from "../../proxy/test/support/ProxyProcess.ts"

const serverScript = fileURLToPath(new URL("./support/mcp-test-server.ts", import.meta.url))
const secret = "mcp-env-secret-4c1d9a7e-never-in-the-guest"
const secretHash = createHash("sha256").update(secret).digest("hex")

const proxyConfig = (socketPath?: string) => ({
  listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
  dnsAnswer: "127.0.0.1",
  allowOut: [],
  credentials: {},
  ...(socketPath === undefined ? {} : { mcpGateway: { socketPath } }),
})

describe("MCP gateway through the proxy", () => {
  it.live(
    "lists and calls allowed tools, refuses others, survives a crash, never shows the secret",
    () =>
      Effect.scoped(Effect.gen(function* () {
        const events: Array<McpToolCallEvent> = []
        const gateway = yield* startMcpGateway({
          sessionId: "00000000-0000-7000-8000-000000000001",
          servers: [{
            name: "tools",
            transport: "stdio",
            command: process.execPath,
            args: [serverScript],
            env: { PAWS_TEST_MCP_SECRET: secret },
            auditArguments: true,
            tools: ["secret_hash", "echo", "crash", "whoami"],
          }],
          onToolCall: (e) => events.push(e),
        })
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => startProxyProcess(proxyConfig(gateway.socketPath))),
          (p) => Effect.promise(() => p.stop()),
        )
        const dir = mkdtempSync(join(tmpdir(), "paws-mcp-test-"))
        const caFile = join(dir, "ca.pem")
        writeFileSync(caFile, proxy.caPem)
        const base = `https://mcp.paws.internal:${proxy.ports.https}`
        const rpc = (path: string, body: unknown) =>
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
              JSON.stringify(body),
              `${base}${path}`,
            ])
          )

        const init = yield* rpc("/tools", {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "curl", version: "1" } },
        })
        assert.strictEqual(init.status, 200, init.body)
        assert.include(init.body, "paws-mcp-gateway/tools")

        const listed = yield* rpc("/tools", { jsonrpc: "2.0", id: 2, method: "tools/list" })
        const names = JSON.parse(listed.body).result.tools.map((t: { name: string }) => t.name)
        assert.deepStrictEqual(names, ["secret_hash", "echo", "whoami", "crash"], "forbidden is hidden")

        const call = (id: number, name: string, args: Record<string, unknown> = {}) =>
          rpc("/tools", { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } })
        const hashed = yield* call(3, "secret_hash")
        assert.strictEqual(JSON.parse(hashed.body).result.content[0].text, secretHash)
        const echoed = yield* call(4, "echo", { text: `please keep ${secret} safe` })
        assert.include(echoed.body, "please keep")

        const refused = yield* call(5, "forbidden")
        const refusal = JSON.parse(refused.body)
        assert.include(refusal.error.message, "not allowed for this session")
        assert.notInclude(refused.body, "the forbidden tool ran")

        const crashed = yield* call(6, "crash")
        const crash = JSON.parse(crashed.body)
        assert.isDefined(crash.error, crashed.body)
        assert.include(crash.error.message, "MCP server tools is unavailable")
        assert.include(crash.error.message, "session goes on")
        const again = yield* call(7, "secret_hash")
        assert.strictEqual(JSON.parse(again.body).result.content[0].text, secretHash, "restarted after the crash")

        const unknown = yield* rpc("/other", { jsonrpc: "2.0", id: 8, method: "tools/list" })
        assert.strictEqual(unknown.status, 404, unknown.body)

        // The SDK's own client, over the same proxy (undici, trusting only the session's CA).
        const dispatcher = new Agent({
          connect: { ca: proxy.caPem, lookup: (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]) },
        })
        const client = new Client({ name: "sdk-test", version: "1" })
        yield* Effect.promise(() =>
          client.connect(
            new StreamableHTTPClientTransport(new URL(`${base}/tools`), {
              fetch: (url, init) => undiciFetch(url, { ...init, dispatcher } as never) as never,
            }),
          )
        )
        const sdkTools = yield* Effect.promise(() => client.listTools())
        assert.strictEqual(sdkTools.tools.length, 4)
        const sdkCall = yield* Effect.promise(() => client.callTool({ name: "secret_hash" }))
        assert.deepStrictEqual(sdkCall.content, [{ type: "text", text: secretHash }])
        yield* Effect.promise(() => client.close())
        yield* Effect.promise(() => dispatcher.close())

        const everything = [init, listed, hashed, refused, crashed, again].map((r) => r.body).join("\n")
        assert.notInclude(everything, secret)
        assert.deepStrictEqual(events.map((e) => [e.tool, e.decision]), [
          ["secret_hash", "allowed"],
          ["echo", "allowed"],
          ["forbidden", "refused"],
          ["crash", "server_error"],
          ["secret_hash", "allowed"],
          ["secret_hash", "allowed"],
        ])
        assert.deepStrictEqual(events[1]!.arguments, { text: "please keep [REDACTED] safe" }, "arguments redacted")
        assert.notInclude(JSON.stringify(events), secret)
        const allowedAudit = yield* Effect.promise(() =>
          proxy.waitForAudit((e) => e.host === "mcp.paws.internal" && e.decision === "allowed")
        )
        assert.strictEqual(allowedAudit.method, "POST")
      })),
    60_000,
  )

  it.live("a session without MCP servers cannot reach the gateway name", () =>
    Effect.scoped(Effect.gen(function* () {
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => startProxyProcess(proxyConfig())),
        (p) => Effect.promise(() => p.stop()),
      )
      const dir = mkdtempSync(join(tmpdir(), "paws-mcp-test-"))
      writeFileSync(join(dir, "ca.pem"), proxy.caPem)
      const denied = yield* Effect.promise(() =>
        curl([
          "--resolve",
          `mcp.paws.internal:${proxy.ports.https}:127.0.0.1`,
          "--cacert",
          join(dir, "ca.pem"),
          "--data-binary",
          "{}",
          `https://mcp.paws.internal:${proxy.ports.https}/tools`,
        ])
      )
      assert.strictEqual(denied.status, 403)
      assert.strictEqual(denied.headers["x-paws-decision"], "denied_host")
    })), 30_000)
})
