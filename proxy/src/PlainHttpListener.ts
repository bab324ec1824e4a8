import { http } from "./NodeHttp.ts"
import type { AuditLog } from "./AuditLog.ts"
import { auditPath } from "./AuditLog.ts"
import type { AccessPolicy } from "./AccessPolicy.ts"
import type { BoundListener, ListenerLimits } from "./HttpsListener.ts"
import { listen } from "./HttpsListener.ts"
import { hostOfHeader, refusals } from "./RequestJudge.ts"

/**
 * Port 80: never forwards anything, so nothing is ever injected in clear text. Allowlisted hosts
 * get a redirect to https; every other host a readable refusal.
 */
export const startPlainHttpListener = (options: {
  readonly address: string
  readonly port: number
  readonly limits: ListenerLimits
  readonly policy: AccessPolicy
  readonly audit: AuditLog
}): Promise<BoundListener> => {
  const server = http.createServer({
    maxHeaderSize: options.limits.maxHeaderBytes,
    headersTimeout: options.limits.headersTimeoutMs,
    requestTimeout: options.limits.headersTimeoutMs,
    keepAliveTimeout: 5000,
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    req.resume()
    const host = hostOfHeader(req.headers.host)
    const path = req.url?.startsWith("/") ? req.url : "/"
    const common = { host, method: req.method ?? "", path: auditPath(path) }
    if (host !== "" && options.policy.allowed(host)) {
      const body = `paws proxy: plain HTTP is not forwarded; use https://${host}${path}\n`
      res.writeHead(308, { location: `https://${host}${path}`, "content-type": "text/plain; charset=utf-8" })
      res.end(body)
      options.audit.record({ ...common, decision: "redirected", status: 308 })
      return
    }
    const refusal = refusals.denied(host || "(no Host header)")
    res.writeHead(refusal.status, { "content-type": "text/plain; charset=utf-8", "x-paws-decision": refusal.decision })
    res.end(`paws proxy: ${refusal.reason}.\n`)
    options.audit.record({ ...common, decision: refusal.decision, status: refusal.status, reason: refusal.reason })
  })
  server.maxConnections = options.limits.maxConnections
  server.timeout = options.limits.idleTimeoutMs
  return listen(server, options.address, options.port)
}
