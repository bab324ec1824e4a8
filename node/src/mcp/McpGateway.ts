import { randomBytes } from "node:crypto"
import { chmodSync, mkdirSync, rmSync } from "node:fs"
import type { IncomingMessage, ServerResponse } from "node:http"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import type { McpDispatchServer, McpToolCallEvent } from "@paws/core"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js"
import { auditedArguments, redactServerSecrets, withoutServerSecrets } from "./McpAuditArguments.ts"
import { makeMcpCallGovernor } from "./McpCallGovernor.ts"
import type { McpApprovalOptions, McpCallGovernor } from "./McpCallGovernor.ts"
import { makeMcpUpstream } from "./McpUpstream.ts"
import type { McpUpstream } from "./McpUpstream.ts"

/** Decides a call the allowlist admits before it runs (McpCallGovernor: rate limit, human approval). */
export type McpCallGate = McpCallGovernor["admit"]

export interface McpGatewayOptions {
  readonly sessionId: string
  readonly servers: ReadonlyArray<McpDispatchServer>
  readonly onToolCall: (event: McpToolCallEvent) => void
  /** Where calls of `approve` tools are reported for a human, and how long they wait. */
  readonly approvals?: McpApprovalOptions
}

export interface McpGateway {
  /** The unix socket the session's proxy forwards `https://mcp.paws.internal/…` to. */
  readonly socketPath: string
  /** A human's decision on a held tool call; false when the id is not one of this gateway's. */
  readonly decide: (requestId: string, approve: boolean) => boolean
}

/**
 * Where gateway sockets live. Not under /tmp, /var/tmp or /dev/shm: a root node's proxies get a
 * private tmpfs there (ProxySandbox). The dir is 0711: a proxy can reach its own socket by its
 * unguessable name but cannot list the others'.
 */
const socketDir = (): string =>
  process.getuid?.() === 0 ? "/run/paws-mcp" : join(tmpdir(), `paws-mcp-${process.getuid?.() ?? "user"}`)

/** The server name a request path names (`/github`, `/github/`), or "" for anything else. */
const serverNameOf = (url: string | undefined): string => {
  const path = (url ?? "/").split("?")[0]!.replace(/^\/+|\/+$/g, "")
  return /^[a-z0-9][a-z0-9_-]{0,63}$/.test(path) ? path : ""
}

/** How long one upstream request may take (progress notifications extend it): tools can be slow. */
const upstreamTimeoutMs = 15 * 60 * 1000
const upstreamOptions = { timeout: upstreamTimeoutMs, resetTimeoutOnProgress: true }

const jsonRpcError = (res: ServerResponse, status: number, message: string) => {
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code: ErrorCode.InvalidRequest, message }, id: null })
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  res.end(body)
}

/**
 * One session's MCP gateway, served by the node on a unix socket: `POST /{name}` is a stateless
 * Streamable HTTP MCP endpoint (JSON responses) for each server the session may use, bridged to
 * the real server (McpUpstream) through an SDK server facing the guest and a client facing the
 * server. Tools off the session's allowlist are left out of `tools/list` and refused on
 * `tools/call`; every call is reported through `onToolCall`. A server the session may not use is a
 * 404 here (and its name is not even resolvable in the guest without any grant). Released with the
 * session: listener closed, socket removed, stdio servers killed.
 */
export const startMcpGateway = (options: McpGatewayOptions): Effect.Effect<McpGateway, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = socketDir()
      mkdirSync(dir, { recursive: true, mode: 0o711 })
      chmodSync(dir, 0o711)
      const socketPath = join(dir, `${randomBytes(16).toString("hex")}.sock`)
      const upstreams = new Map<string, { readonly server: McpDispatchServer; readonly upstream: McpUpstream }>(
        options.servers.map((s) => [s.name, { server: s, upstream: makeMcpUpstream(s, options.sessionId) }]),
      )
      const governor = makeMcpCallGovernor(options.servers, options.approvals)
      const gate = governor.admit
      const http = createServer((req, res) => {
        const name = serverNameOf(req.url)
        const entry = upstreams.get(name)
        if (entry === undefined) {
          req.resume()
          return jsonRpcError(
            res,
            404,
            `no such MCP server for this session (its spec's mcp lists the ones it may use)`,
          )
        }
        if (req.method !== "POST") {
          req.resume()
          res.setHeader("allow", "POST")
          return jsonRpcError(res, 405, "this gateway is stateless: POST JSON-RPC requests only")
        }
        serve(entry.server, entry.upstream, gate, options.onToolCall, req, res).catch(() => res.destroy())
      })
      await new Promise<void>((resolve, reject) => {
        http.once("error", reject)
        http.listen(socketPath, () => resolve())
      })
      // The proxy runs as another (unprivileged) uid: it must be able to connect.
      chmodSync(socketPath, 0o666)
      return { socketPath, http, upstreams, governor }
    }),
    ({ http, socketPath, upstreams, governor }) =>
      Effect.promise(async () => {
        governor.close()
        http.closeAllConnections()
        await new Promise<void>((resolve) => http.close(() => resolve()))
        await Promise.all([...upstreams.values()].map((u) => u.upstream.close()))
        rmSync(socketPath, { force: true })
      }),
  ).pipe(Effect.map(({ socketPath, governor }) => ({ socketPath, decide: governor.decide })))

/** One request: a fresh SDK server (stateless mode) whose handlers call the shared upstream client. */
const serve = async (
  server: McpDispatchServer,
  upstream: McpUpstream,
  gate: McpCallGate,
  onToolCall: (event: McpToolCallEvent) => void,
  req: IncomingMessage,
  res: ServerResponse,
) => {
  const allowed = server.tools === undefined ? undefined : new Set(server.tools)
  const facing = new Server({ name: `paws-mcp-gateway/${server.name}`, version: "1" }, {
    capabilities: { tools: {} },
  })
  const unavailable = (e: unknown) => {
    if (e instanceof McpError && e.code === ErrorCode.RequestTimeout) {
      return new McpError(ErrorCode.InternalError, `MCP server ${server.name} did not answer in time: ${e.message}`)
    }
    if (e instanceof McpError && e.code !== ErrorCode.ConnectionClosed) {
      return e // the server's own answer (e.g. unknown tool): passed through
    }
    // The upstream's own error text may quote what it was sent: never its secrets.
    const why = redactServerSecrets(upstream.lastFailure() ?? (e as Error).message, server)
    return new McpError(
      ErrorCode.InternalError,
      `MCP server ${server.name} is unavailable: ${why}. The session goes on; the next request starts it again.`,
    )
  }
  facing.setRequestHandler(ListToolsRequestSchema, async (request) => {
    try {
      const client = await upstream.client()
      const listed = await client.listTools(request.params, upstreamOptions)
      const tools = listed.tools.filter((t) => allowed === undefined || allowed.has(t.name))
      return withoutServerSecrets({ ...listed, tools }, server).result
    } catch (e) {
      throw unavailable(e)
    }
  })
  facing.setRequestHandler(CallToolRequestSchema, async (request) => {
    const started = performance.now()
    const tool = request.params.name
    const report = (decision: McpToolCallEvent["decision"], error?: string, secretRedacted = false) =>
      onToolCall({
        time: new Date().toISOString(),
        server: server.name,
        tool,
        decision,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        ...(error === undefined ? {} : { error }),
        ...(secretRedacted ? { secretRedacted } : {}),
        ...(server.auditArguments === true ? { arguments: auditedArguments(request.params.arguments, server) } : {}),
      })
    if (allowed !== undefined && !allowed.has(tool)) {
      report("refused", "not on this session's tool allowlist")
      throw new McpError(
        ErrorCode.InvalidParams,
        `tool ${tool} of MCP server ${server.name} is not allowed for this session (its tool allowlist: ${
          [...allowed].join(", ")
        })`,
      )
    }
    const verdict = await gate({ server: server.name, tool })
    if (!verdict.allow) {
      report("refused", verdict.reason)
      throw new McpError(ErrorCode.InvalidRequest, `tool ${tool} of ${server.name} was refused: ${verdict.reason}`)
    }
    try {
      const client = await upstream.client()
      const { result, hit } = withoutServerSecrets(
        await client.callTool(request.params, undefined, upstreamOptions),
        server,
      )
      report("allowed", result.isError === true ? "the tool reported an error" : undefined, hit)
      return result
    } catch (e) {
      const error = unavailable(e)
      report(error.code === ErrorCode.InternalError ? "server_error" : "allowed", error.message)
      throw error
    }
  })
  // Stateless (no session id): each request stands alone, as the guest's curl or SDK client sends it.
  const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true })
  res.on("close", () => {
    void transport.close()
    void facing.close()
  })
  await facing.connect(transport)
  await transport.handleRequest(req, res)
}
