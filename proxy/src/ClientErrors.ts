import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import type { TLSSocket } from "node:tls"
import type { AuditLog } from "./AuditLog.ts"
import { methodRefused } from "./RequestFraming.ts"
import type { Refusal } from "./RequestJudge.ts"

const statusText: Record<number, string> = { 400: "Bad Request", 405: "Method Not Allowed", 408: "Request Timeout" }

const writeRefusal = (socket: Duplex, refusal: Refusal) => {
  const body = `paws proxy: ${refusal.reason}.\n`
  socket.end(
    `HTTP/1.1 ${refusal.status} ${statusText[refusal.status] ?? "Refused"}\r\n` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-paws-decision: ${refusal.decision}\r\nconnection: close\r\n\r\n${body}`,
  )
}

/** Node's own status for parse failures it answers specially (oversized headers, slow clients). */
const parserStatus = (code: string | undefined): number | undefined =>
  code === "HPE_HEADER_OVERFLOW" ? 431 : code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : undefined

/**
 * Requests the HTTP parser itself rejects (both Transfer-Encoding and Content-Length, obs-fold,
 * bare CR, duplicate Content-Length, bad chunk sizes …) get a readable 400 naming the fault and an
 * audit event, instead of Node's bare 400; nothing of them was forwarded.
 */
export const makeClientErrorHandler = (audit: AuditLog) => (error: NodeJS.ErrnoException, socket: Duplex) => {
  const host = (socket as TLSSocket).servername || ""
  const code = error.code
  if (!code?.startsWith("HPE_") && code !== "ERR_HTTP_REQUEST_TIMEOUT") return socket.destroy()
  // TRACK is not even a method to the parser; answer it as TRACE is answered.
  const packet = (error as { rawPacket?: Buffer }).rawPacket
  if (code === "HPE_INVALID_METHOD" && packet?.subarray(0, 6).toString("latin1") === "TRACK ") {
    writeRefusal(socket, methodRefused("TRACK"))
    return audit.record({ decision: "method_refused", host, method: "TRACK", status: 405 })
  }
  const special = parserStatus(code)
  if (!socket.writable) return socket.destroy()
  if (special !== undefined) {
    return socket.end(
      `HTTP/1.1 ${special} ${statusText[special] ?? "Request Header Fields Too Large"}\r\nconnection: close\r\n\r\n`,
    )
  }
  const detail = (error as { reason?: string }).reason ?? code
  const refusal: Refusal = {
    status: 400,
    decision: "malformed_request",
    reason: `the request could not be parsed unambiguously (${detail}), so it was not forwarded`,
  }
  writeRefusal(socket, refusal)
  audit.record({ decision: refusal.decision, host, status: 400, reason: refusal.reason })
}

/** CONNECT on the TLS listener: a tunnel would bypass every check, so 405. */
export const makeConnectRefusal = (audit: AuditLog) => (req: IncomingMessage, socket: Duplex) => {
  const refusal = methodRefused("CONNECT")
  writeRefusal(socket, refusal)
  audit.record({
    decision: refusal.decision,
    host: (socket as TLSSocket).servername || "",
    method: "CONNECT",
    status: 405,
  })
  req.resume()
}
