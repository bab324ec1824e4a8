import { mcpHost } from "@paws/core/McpGrant"
import { http, https } from "./NodeHttp.ts"
import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http"
import type { Socket } from "node:net"
import type { TLSSocket } from "node:tls"
import type { AuditLog } from "./AuditLog.ts"
import { auditPath } from "./AuditLog.ts"
import type { Admission, Refusal, RequestJudge } from "./RequestJudge.ts"
import { hopByHop, isRefusal, refusals, upstreamRequestHeaders } from "./RequestJudge.ts"
import { containsSecret, redactText, SecretFound, SecretScanner } from "./SecretScanner.ts"
import type { SecretNeedles } from "./SecretScanner.ts"
import type { UpstreamPool } from "./UpstreamPool.ts"
import { BlockedAddress } from "./UpstreamPool.ts"
import { BodyMeter } from "./BodyMeter.ts"
import { framingHeaders } from "./RequestFraming.ts"
import { encodedBodyHeaders, responseDecoder } from "./ResponseDecoding.ts"
import { isLlmCall, LlmRecorder } from "./LlmRecorder.ts"
import { type EgressGate, gateRefusal } from "./EgressGate.ts"

export interface ForwarderDeps {
  readonly judge: RequestJudge
  readonly pool: UpstreamPool
  readonly audit: AuditLog
  /** All injected values: responses to requests that carried one are scanned for echoes. */
  readonly secrets: SecretNeedles
  readonly idleTimeoutMs: number
  readonly connectTimeoutMs: number
  /** Set for memory sessions: LLM exchanges are recorded (bodies capped) and sent as `llm` messages. */
  readonly llmHistory?: { readonly maxBytes: number }
  /** The node's MCP gateway for this session: where requests for `mcp.paws.internal/{server}` go. */
  readonly mcp?: { readonly socketPath: string; readonly servers: ReadonlySet<string> } | undefined
  /** Holds requests that match the session's approval rules. */
  readonly gate?: { readonly gate: EgressGate; readonly timeoutMs: number } | undefined
}

export const refusalBody = (refusal: Refusal): string => `paws proxy: ${refusal.reason}.\n`

/** Writes the readable refusal and its audit event. */
export const refuse = (
  deps: ForwarderDeps,
  req: IncomingMessage,
  res: ServerResponse,
  refusal: Refusal,
  host: string,
) => {
  const body = refusalBody(refusal)
  if (!res.headersSent) {
    res.writeHead(refusal.status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-paws-decision": refusal.decision,
      // After a request the proxy would not frame, nothing more on this connection is trusted.
      ...(refusal.decision === "malformed_request" || refusal.decision === "method_refused"
        ? { connection: "close" }
        : {}),
    })
    res.end(body)
  } else res.destroy()
  deps.audit.record({
    decision: refusal.decision,
    host,
    method: req.method ?? "",
    path: auditPath(req.url ?? ""),
    status: refusal.status,
    reason: refusal.reason,
  })
}

/** Response headers for the guest: hop-by-hop dropped, echoed credential values redacted. */
export const guestResponseHeaders = (
  raw: ReadonlyArray<string>,
  secrets: SecretNeedles | undefined,
  drop?: ReadonlySet<string>,
) => {
  const out: Array<string> = []
  let redacted = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (hopByHop.has(name.toLowerCase()) || drop?.has(name.toLowerCase())) continue
    let value = raw[i + 1]!
    if (secrets && containsSecret(value, secrets)) {
      value = redactText(value, secrets)
      redacted = true
    }
    out.push(name, value)
  }
  return { headers: out, redacted }
}

export const blockedOrUpstreamError = (host: string, error: Error): Refusal =>
  error instanceof BlockedAddress ? { status: 502, decision: "blocked_address", reason: error.message } : {
    status: 502,
    decision: "upstream_error",
    reason: `could not reach ${host} (${(error as NodeJS.ErrnoException).code ?? error.message})`,
  }

/** A path on the MCP gateway naming a server the session may not use: refused here, never forwarded. */
const mcpRefusal = (server: string): Refusal => ({
  status: 403,
  decision: "denied_host",
  reason: `MCP server "${server.slice(0, 64)}" is not available to this sandbox (the session's mcp list); ` +
    "ask the session owner to grant it",
})

export const makeRequestForwarder = (deps: ForwarderDeps) => (req: IncomingMessage, res: ServerResponse) => {
  const started = performance.now()
  const socket = req.socket as TLSSocket
  const verdict = deps.judge(socket.servername, req, false)
  if (isRefusal(verdict)) {
    req.resume()
    return refuse(deps, req, res, verdict, socket.servername || String(req.headers.host ?? ""))
  }
  if (verdict.host === mcpHost && deps.mcp !== undefined) {
    const server = (req.url ?? "/").split(/[/?]/)[1] ?? ""
    if (!deps.mcp.servers.has(server)) {
      req.resume()
      return refuse(deps, req, res, mcpRefusal(server), verdict.host)
    }
  }
  // The MCP gateway may hold a tool call for a human (its own deadlines apply): the guest's connection stays open.
  if (verdict.host === mcpHost && deps.mcp !== undefined) res.once("close", keepOpen(socket))
  const method = req.method ?? "GET"
  const path = auditPath(req.url ?? "")
  const held = deps.gate?.gate.hold(method, verdict.host, path)
  if (held === undefined) return forward(deps, req, res, verdict, started)
  // The body stays unread (in the socket) until a human decides; the idle timeout must not cut the wait short.
  req.pause()
  const reopen = keepOpen(socket)
  deps.audit.record({ decision: "approval_held", host: verdict.host, method, path })
  held.then((outcome) => {
    reopen()
    if (outcome === "approved") return forward(deps, req, res, verdict, performance.now())
    req.resume()
    refuse(deps, req, res, gateRefusal(outcome, method, verdict.host, deps.gate!.timeoutMs), verdict.host)
  })
}

/** Lifts the socket's idle timeout (a request waiting on a human is silent); the returned function restores it. */
const keepOpen = (socket: Socket): () => void => {
  const idle = socket.timeout
  socket.setTimeout(0)
  return () => {
    if (!socket.destroyed && idle !== undefined && idle > 0) socket.setTimeout(idle)
  }
}

const forward = (
  deps: ForwarderDeps,
  req: IncomingMessage,
  res: ServerResponse,
  admission: Admission,
  started: number,
) => {
  const { host, injections } = admission
  const injected = injections.length > 0
  let bytesIn = 0
  let bytesOut = 0
  let status = 0
  let decision: Refusal["decision"] | "allowed" = "allowed"
  let reason: string | undefined
  const recorder = deps.llmHistory !== undefined && isLlmCall(req.method, req.url)
    ? new LlmRecorder(req, deps.llmHistory.maxBytes, deps.secrets)
    : undefined

  // Until the body is fully written the upstream may still be reading it: a response before then
  // spoils the connection (never reused), so leftover body bytes can never become a "next request".
  let bodyWritten = admission.framing.body === "none"
  let upReq = openUpstream(deps, req, admission)
  upReq.on("finish", () => (bodyWritten = true))
  const fail = (refusal: Refusal) => {
    decision = refusal.decision
    reason = refusal.reason
    status = refusal.status
    const body = refusalBody(refusal)
    if (!res.headersSent) {
      res.writeHead(refusal.status, {
        "content-type": "text/plain; charset=utf-8",
        "x-paws-decision": refusal.decision,
      })
      res.end(body)
    } else res.destroy()
  }

  const onResponse = (upRes: IncomingMessage) => {
    if (!bodyWritten) deps.pool.spoil(upReq.socket)
    // Only a body can hide an echo: HEAD, 204 and 304 answers (and empty ones) pass undecoded.
    const bodyless = req.method === "HEAD" || upRes.statusCode === 204 || upRes.statusCode === 304 ||
      upRes.headers["content-length"] === "0"
    const decoder = injected && !bodyless ? responseDecoder(upRes.headers["content-encoding"]) : undefined
    if (decoder === "unsupported") {
      fail(refusals.unscannable(host, String(upRes.headers["content-encoding"])))
      return upReq.destroy()
    }
    status = upRes.statusCode ?? 502
    const { headers, redacted } = guestResponseHeaders(
      upRes.rawHeaders,
      injected ? deps.secrets : undefined,
      decoder === undefined ? undefined : encodedBodyHeaders,
    )
    if (redacted) echo()
    res.writeHead(status, upRes.statusMessage, headers)
    // Streams (SSE, chunked) get their headers at once; sized bodies travel in the same packet as them.
    if (decoder !== undefined || upRes.headers["content-length"] === undefined) res.flushHeaders()
    upRes.on("data", (c: Buffer) => (bytesOut += c.length))
    // pipe, not pipeline: pipeline allocates an AbortController per call, measurable per request.
    let source: NodeJS.ReadableStream = upRes
    if (decoder !== undefined) {
      decoder.on("error", () => res.destroy())
      source = source.pipe(decoder)
    }
    if (injected) source = source.pipe(new SecretScanner(deps.secrets, "redact", echo))
    recorder?.watchResponse(source, decoder === undefined ? upRes.headers["content-encoding"] : undefined)
    source.pipe(res)
    upRes.on("error", () => res.destroy())
  }

  const wire = (attempt: ClientRequest, retried: boolean) => {
    attempt.on("response", onResponse)
    attempt.on("error", (error) => {
      // A pooled connection the upstream closed as we reused it: retry a bodiless request once.
      if (
        !retried && attempt.reusedSocket && status === 0 && bytesIn === 0 && req.complete &&
        admission.framing.body === "none" &&
        retryable(req.method)
      ) {
        upReq = openUpstream(deps, req, admission)
        wire(upReq, true)
        upReq.end()
        return
      }
      if (decision === "allowed") {
        fail(error instanceof SecretFound ? refusals.leak(host) : blockedOrUpstreamError(host, error))
      }
    })
  }
  wire(upReq, false)

  let echoed = false
  const echo = () => {
    if (echoed) return
    echoed = true
    deps.audit.record({
      decision: "echo_redacted",
      host,
      method: req.method ?? "",
      path: auditPath(req.url ?? ""),
      reason: "an injected credential came back in the response and was redacted",
    })
  }

  req.on("data", (c: Buffer) => (bytesIn += c.length))
  // pipe, not pipeline: destroying a server request would destroy the socket before the 502 is written.
  const { framing } = admission
  if (framing.body === "none") {
    req.resume()
    upReq.end()
  } else {
    const meter = new BodyMeter(framing.body === "length" ? framing.length : undefined)
    meter.on("error", (err) => upReq.destroy(err))
    if (admission.foreign.needles.length > 0) {
      const scanner = new SecretScanner(admission.foreign, "block", () => {})
      scanner.on("error", (err) => upReq.destroy(err))
      req.pipe(scanner).pipe(meter).pipe(upReq)
    } else {
      req.pipe(meter).pipe(upReq)
    }
  }

  res.on("close", () => {
    if (!res.writableFinished) upReq.destroy()
    deps.audit.record({
      decision,
      host,
      method: req.method ?? "",
      path: auditPath(req.url ?? ""),
      status,
      bytesIn,
      bytesOut,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      ...(injected ? { injected: injections.map((i) => i.name) } : {}),
      ...(reason === undefined ? {} : { reason }),
    })
    if (recorder !== undefined) deps.audit.send({ _tag: "llm", exchange: recorder.finish(host, status) })
  })
}

const retryable = (method: string | undefined) => method === "GET" || method === "HEAD" || method === "OPTIONS"

/** The upstream request, with the connect and idle timeouts of the limits. */
const openUpstream = (deps: ForwarderDeps, req: IncomingMessage, admission: Admission): ClientRequest => {
  const upReq = admission.host === mcpHost && deps.mcp !== undefined
    ? http.request({
      socketPath: deps.mcp.socketPath,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: upstreamRequestHeaders(req.rawHeaders, admission.injections, false, framingHeaders(admission.framing)),
      setHost: false,
    })
    : https.request({
      host: admission.host,
      servername: admission.host,
      port: deps.pool.portFor(admission.host),
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: upstreamRequestHeaders(req.rawHeaders, admission.injections, false, framingHeaders(admission.framing)),
      agent: deps.pool.agent,
      lookup: deps.pool.lookup,
      setHost: false,
    })
  // The gateway keeps its own deadlines (a held tool call waits for a human); real upstreams get the idle timeout.
  if (!(admission.host === mcpHost && deps.mcp !== undefined)) {
    upReq.setTimeout(deps.idleTimeoutMs, () => upReq.destroy(new Error("upstream idle timeout")))
  }
  upReq.on("socket", (s) => {
    s.setNoDelay(true)
    if (!s.connecting) return
    const timer = setTimeout(() => upReq.destroy(new Error("upstream connect timeout")), deps.connectTimeoutMs)
    s.once("connect", () => clearTimeout(timer))
    s.once("close", () => clearTimeout(timer))
  })
  return upReq
}
