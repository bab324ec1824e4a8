import { https } from "./NodeHttp.ts"
import type * as net from "node:net"
import type { LeafCertificateCache } from "./LeafCertificateCache.ts"
import type { makeRequestForwarder } from "./RequestForwarder.ts"
import type { makeWebSocketForwarder } from "./WebSocketForwarder.ts"
import type { AuditLog } from "./AuditLog.ts"
import { makeClientErrorHandler, makeConnectRefusal } from "./ClientErrors.ts"

export interface ListenerLimits {
  readonly maxHeaderBytes: number
  readonly maxConnections: number
  readonly idleTimeoutMs: number
  readonly headersTimeoutMs: number
}

export interface BoundListener {
  readonly port: number
  readonly close: () => Promise<void>
}

/** Resolves once listening; `close` stops accepting and drops open connections (the VM is gone). */
export const listen = (server: net.Server, address: string, port: number): Promise<BoundListener> => {
  const sockets = new Set<net.Socket>()
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen({ host: address, port, backlog: 511 }, () => {
      server.off("error", reject)
      server.on("error", () => {})
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            for (const socket of sockets) socket.destroy()
          }),
      })
    })
  })
}

/**
 * Terminates the guest's TLS with a per-name leaf from the per-VM CA and hands requests and
 * WebSocket upgrades to the forwarders. A client without SNI gets a default certificate and then
 * a readable 421, never a silent reset.
 */
export const startHttpsListener = (options: {
  readonly address: string
  readonly port: number
  readonly limits: ListenerLimits
  readonly leaves: LeafCertificateCache
  readonly defaultCertificate: { readonly key: string; readonly cert: string; readonly ca: string }
  readonly onRequest: ReturnType<typeof makeRequestForwarder>
  readonly onUpgrade: ReturnType<typeof makeWebSocketForwarder>
  readonly audit: AuditLog
}): Promise<BoundListener> => {
  const { limits } = options
  const server = https.createServer({
    ...options.defaultCertificate,
    SNICallback: options.leaves.sniCallback,
    minVersion: "TLSv1.2",
    handshakeTimeout: limits.headersTimeoutMs,
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0, // uploads (git push) and streams may legitimately take long; idleness is bounded below
    keepAliveTimeout: Math.min(limits.idleTimeoutMs, 60_000),
    connectionsCheckingInterval: 1000,
    noDelay: true,
  }, options.onRequest)
  server.maxConnections = limits.maxConnections
  server.timeout = limits.idleTimeoutMs
  server.on("upgrade", options.onUpgrade)
  server.on("clientError", makeClientErrorHandler(options.audit))
  server.on("connect", makeConnectRefusal(options.audit))
  // Malformed TLS: the socket is already destroyed; one line for whoever reads stderr.
  server.on(
    "tlsClientError",
    (error: NodeJS.ErrnoException) => process.stderr.write(`paws proxy: tls: ${error.code ?? error.message}\n`),
  )
  return listen(server, options.address, options.port)
}
