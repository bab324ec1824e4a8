import { https } from "./NodeHttp.ts"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import type { TLSSocket } from "node:tls"
import { auditPath } from "./AuditLog.ts"
import type { ForwarderDeps } from "./RequestForwarder.ts"
import { blockedOrUpstreamError, guestResponseHeaders, refusalBody } from "./RequestForwarder.ts"
import type { Refusal } from "./RequestJudge.ts"
import { isRefusal, upstreamRequestHeaders } from "./RequestJudge.ts"
import { WebSocketFrameScanner } from "./WebSocketFrameScanner.ts"
import { gateRefusal } from "./EgressGate.ts"

const statusLine = (status: number, message: string | undefined) => `HTTP/1.1 ${status} ${message ?? ""}\r\n`

const headBlock = (headers: ReadonlyArray<string>) => {
  let s = ""
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`
  return s
}

/**
 * WebSocket (and only WebSocket) upgrades: the handshake goes upstream with the injected headers,
 * the 101 comes back, then both sockets are spliced. Frames from the server are scanned for echoed
 * credentials when one was injected (masking keeps frame lengths valid).
 */
export const makeWebSocketForwarder = (deps: ForwarderDeps) => (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  const started = performance.now()
  const servername = (socket as TLSSocket).servername
  const audit = (decision: Refusal["decision"] | "allowed", host: string, status: number, reason?: string) =>
    deps.audit.record({
      decision,
      host,
      method: req.method ?? "GET",
      path: auditPath(req.url ?? ""),
      status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      ...(reason === undefined ? {} : { reason }),
    })
  const refuse = (refusal: Refusal, host: string) => {
    const body = refusalBody(refusal)
    socket.end(
      statusLine(refusal.status, "Refused") +
        headBlock(["content-type", "text/plain; charset=utf-8", "content-length", String(Buffer.byteLength(body))]) +
        "connection: close\r\n\r\n" + body,
    )
    audit(refusal.decision, host, refusal.status, refusal.reason)
  }
  socket.on("error", () => socket.destroy())

  const verdict = deps.judge(servername, req, true)
  if (isRefusal(verdict)) return refuse(verdict, servername || "")
  const { host, injections } = verdict
  if (String(req.headers.upgrade).toLowerCase() !== "websocket") {
    return refuse({ status: 400, decision: "denied_host", reason: "only WebSocket upgrades are supported" }, host)
  }

  const held = deps.gate?.gate.hold(req.method ?? "GET", host, auditPath(req.url ?? ""))
  if (held === undefined) return connect()
  // Held for approval (network.approvals): the guest's bytes wait in the socket meanwhile.
  socket.pause()
  held.then((outcome) => {
    if (outcome !== "approved") {
      return refuse(gateRefusal(outcome, req.method ?? "GET", host, deps.gate!.timeoutMs), host)
    }
    socket.resume()
    connect()
  })

  function connect() {
    const upReq = https.request({
      host,
      servername: host,
      port: deps.pool.portFor(host),
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: upstreamRequestHeaders(req.rawHeaders, injections, true),
      // A connection of its own, never pooled: it either becomes the WebSocket or is closed.
      agent: deps.pool.oneShotAgent,
      lookup: deps.pool.lookup,
      setHost: false,
    })
    upReq.on("error", (error) => refuse(blockedOrUpstreamError(host, error), host))
    upReq.on("response", (upRes) => {
      // The server declined the upgrade: relay its answer and close both sides.
      const { headers } = guestResponseHeaders(upRes.rawHeaders, injections.length > 0 ? deps.secrets : undefined)
      socket.write(
        statusLine(upRes.statusCode ?? 502, upRes.statusMessage) + headBlock(headers) + "connection: close\r\n\r\n",
      )
      upRes.pipe(socket)
      upRes.on("end", () => upReq.destroy())
      audit("allowed", host, upRes.statusCode ?? 502)
    })
    upReq.on("upgrade", (upRes, upSocket, upHead) => {
      if (injections.length > 0 && upRes.headers["sec-websocket-extensions"] !== undefined) {
        // Never offered on an injected upgrade: compressed frames would hide an echoed credential.
        upSocket.destroy()
        return refuse({
          status: 502,
          decision: "upstream_error",
          reason: `${host} accepted the WebSocket with an extension that was not offered; the connection was closed`,
        }, host)
      }
      const { headers } = guestResponseHeaders(upRes.rawHeaders, injections.length > 0 ? deps.secrets : undefined)
      socket.write(
        statusLine(101, upRes.statusMessage) + headBlock(headers) + "connection: upgrade\r\nupgrade: websocket\r\n\r\n",
      )
      upSocket.on("error", () => socket.destroy())
      socket.on("close", () => upSocket.destroy())
      upSocket.on("close", () => socket.destroy())
      if (injections.length > 0) {
        const scanner = new WebSocketFrameScanner(
          deps.secrets,
          () =>
            audit("echo_redacted", host, 101, "an injected credential came back over the WebSocket and was redacted"),
        )
        scanner.on("error", () => {
          upSocket.destroy()
          socket.destroy()
        })
        if (upHead.length > 0) scanner.write(upHead)
        upSocket.pipe(scanner).pipe(socket)
      } else {
        if (upHead.length > 0) socket.write(upHead)
        upSocket.pipe(socket)
      }
      if (head.length > 0) upSocket.write(head)
      socket.pipe(upSocket)
      audit("allowed", host, 101)
    })
    upReq.end()
  }
}
