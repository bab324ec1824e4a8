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
import { createServer, request as httpRequest } from "node:http"
import type { AddressInfo } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { McpToolCallEvent } from "@paws/core"
import { startMcpGateway } from "../src/mcp/McpGateway.ts"
import { curl } from "../../proxy/test/support/Clients.ts"
import { startProxyProcess } from "../../proxy/test/support/ProxyProcess.ts"

const serverScript = fileURLToPath(new URL("./support/mcp-test-server.ts", import.meta.url))
const secret = "mcp-env-secret-4c1d9a7e-never-in-the-guest"
const secretHash = createHash("sha256").update(secret).digest("hex")

const httpSecret = "mcp-http-header-secret-0b5e22"

/** A remote Streamable HTTP MCP server on loopback that answers only requests carrying its bearer token. */
const remoteServer = Effect.acquireRelease(
  Effect.promise(async () => {
    const unauthorized: Array<string> = []
    const http = createServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${httpSecret}`) {
        unauthorized.push(String(req.headers.authorization))
        res.writeHead(401).end()
        return
      }
      const server = new Server({ name: "remote", version: "1" }, { capabilities: { tools: {} } })
      server.setRequestHandler(ListToolsRequestSchema, () => ({
        tools: [{ name: "authorized", inputSchema: { type: "object" as const, properties: {} } }],
      }))
      server.setRequestHandler(CallToolRequestSchema, () => ({ content: [{ type: "text", text: "header ok" }] }))
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true })
      res.on("close", () => void server.close())
      void server.connect(transport).then(() => transport.handleRequest(req, res))
    })
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
    const { port } = http.address() as AddressInfo
    return { http, url: `http://127.0.0.1:${port}/mcp`, unauthorized }
  }),
  ({ http }) => Effect.promise(() => new Promise<void>((resolve) => http.close(() => resolve()))),
)

const proxyConfig = (socketPath?: string) => ({
  listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
  dnsAnswer: "127.0.0.1",
  allowOut: [],
  credentials: {},
  ...(socketPath === undefined ? {} : { mcpGateway: { socketPath, servers: ["tools", "remote", "broken"] } }),
})

describe("MCP gateway through the proxy", () => {
  it.live(
    "lists and calls allowed tools, refuses others, survives a crash, never shows the secret",
    () =>
      Effect.scoped(Effect.gen(function* () {
        const events: Array<McpToolCallEvent> = []
        const remote = yield* remoteServer
        const gateway = yield* startMcpGateway({
          sessionId: "00000000-0000-7000-8000-000000000001",
          servers: [{
            name: "tools",
            transport: "stdio",
            command: process.execPath,
            args: [serverScript],
            env: { PAWS_TEST_MCP_SECRET: secret },
            auditArguments: true,
            tools: ["secret_hash", "echo", "crash", "whoami", "leak"],
          }, {
            name: "remote",
            transport: "http",
            url: remote.url,
            headers: { authorization: `Bearer ${httpSecret}` },
          }, { name: "broken", transport: "stdio", command: "/nonexistent/mcp-server" }],
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
        assert.deepStrictEqual(names, ["secret_hash", "echo", "whoami", "crash", "leak"], "forbidden is hidden")

        const call = (id: number, name: string, args: Record<string, unknown> = {}) =>
          rpc("/tools", { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } })
        const hashed = yield* call(3, "secret_hash")
        assert.strictEqual(JSON.parse(hashed.body).result.content[0].text, secretHash)
        const echoed = yield* call(4, "echo", { text: `please keep ${secret} safe` })
        assert.include(echoed.body, "please keep")

        const leaked = yield* call(45, "leak")
        assert.strictEqual(JSON.parse(leaked.body).result.content[0].text, "my token is [REDACTED]")

        // A remote (Streamable HTTP) server: the node sends its secret header; the guest never has it.
        const remoteCall = yield* rpc("/remote", {
          jsonrpc: "2.0",
          id: 46,
          method: "tools/call",
          params: { name: "authorized", arguments: {} },
        })
        assert.strictEqual(JSON.parse(remoteCall.body).result.content[0].text, "header ok", remoteCall.body)
        assert.deepStrictEqual(remote.unauthorized, [], "every request to the remote server carried its header")

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

        // A server the session may not use: the proxy refuses it, the gateway would not know it either.
        const unknown = yield* rpc("/other", { jsonrpc: "2.0", id: 8, method: "tools/list" })
        assert.strictEqual(unknown.status, 403, unknown.body)
        assert.strictEqual(unknown.headers["x-paws-decision"], "denied_host")
        assert.include(unknown.body, `MCP server "other" is not available`)
        const direct = yield* Effect.promise(() =>
          new Promise<number>((resolve, reject) =>
            httpRequest({ socketPath: gateway.socketPath, path: "/other", method: "POST" }, (r) => {
              r.resume()
              resolve(r.statusCode ?? 0)
            }).on("error", reject).end("{}")
          )
        )
        assert.strictEqual(direct, 404, "the gateway itself has no such server")
        const garbled = yield* rpc("/%ZZ", { jsonrpc: "2.0", id: 9, method: "tools/list" })
        assert.strictEqual(garbled.status, 403, garbled.body)
        const broken = yield* rpc("/broken", { jsonrpc: "2.0", id: 10, method: "tools/list" })
        assert.include(JSON.parse(broken.body).error.message, "MCP server broken is unavailable", broken.body)

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
        assert.strictEqual(sdkTools.tools.length, 5)
        const sdkCall = yield* Effect.promise(() => client.callTool({ name: "secret_hash" }))
        assert.deepStrictEqual(sdkCall.content, [{ type: "text", text: secretHash }])
        yield* Effect.promise(() => client.close())
        yield* Effect.promise(() => dispatcher.close())

        const everything = [init, listed, hashed, leaked, remoteCall, refused, crashed, again].map((r) => r.body)
          .join("\n")
        assert.notInclude(everything, secret)
        assert.notInclude(everything, httpSecret)
        assert.deepStrictEqual(events.map((e) => [e.tool, e.decision]), [
          ["secret_hash", "allowed"],
          ["echo", "allowed"],
          ["leak", "allowed"],
          ["authorized", "allowed"],
          ["forbidden", "refused"],
          ["crash", "server_error"],
          ["secret_hash", "allowed"],
          ["secret_hash", "allowed"],
        ])
        assert.deepStrictEqual(events[1]!.arguments, { text: "please keep [REDACTED] safe" }, "arguments redacted")
        assert.isTrue(events[2]!.secretRedacted, "the echoed secret is flagged in the audit event")
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
