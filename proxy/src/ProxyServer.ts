import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { mcpHost } from "@paws/core/McpGrant"
import { defaultProxyLimits } from "@paws/core/ProxyConfig"
import type { ProxyConfig, ProxyPorts } from "@paws/core/ProxyConfig"
import { makeAccessPolicy } from "./AccessPolicy.ts"
import { makeAuditLog } from "./AuditLog.ts"
import type { AuditLog } from "./AuditLog.ts"
import { makeCertificateAuthority } from "./CertificateAuthority.ts"
import type { CertificateAuthority } from "./CertificateAuthority.ts"
import { makeDnsAnswerer, startDnsServer } from "./DnsServer.ts"
import { defaultApprovalTimeoutMs, type EgressGate, makeEgressGate } from "./EgressGate.ts"
import { startHttpsListener } from "./HttpsListener.ts"
import { makeLeafCertificateCache } from "./LeafCertificateCache.ts"
import { startPlainHttpListener } from "./PlainHttpListener.ts"
import { makeRequestForwarder } from "./RequestForwarder.ts"
import { makeRequestJudge } from "./RequestJudge.ts"
import { secretNeedles } from "./SecretScanner.ts"
import { makeUpstreamPool } from "./UpstreamPool.ts"
import { makeWebSocketForwarder } from "./WebSocketForwarder.ts"

export interface RunningProxy {
  readonly caCertificatePem: string
  readonly ports: ProxyPorts
  readonly audit: AuditLog
  readonly gate: EgressGate
}

/** Acquires a started listener and closes it when the scope closes. */
const listener = <A extends { readonly close: () => Promise<void> }>(start: () => Promise<A>) =>
  Effect.acquireRelease(Effect.promise(start), (l) => Effect.promise(() => l.close()))

/**
 * One proxy for one VM: CA, policy, upstream pool and the HTTPS, HTTP and DNS listeners, each
 * released in reverse order when the scope closes. `write` receives NDJSON lines for the parent.
 */
/** The per-VM CA and its no-SNI leaf: nothing session-specific, so made before the config arrives. */
export interface PreparedAuthority {
  readonly ca: CertificateAuthority
  readonly noSniCertificatePem: string
}

export const prepareAuthority = async (): Promise<PreparedAuthority> => {
  const ca = await makeCertificateAuthority()
  return { ca, noSniCertificatePem: await ca.issueLeaf("no-sni.invalid") }
}

export const startProxy = (
  config: ProxyConfig,
  write: (line: string) => void,
  authority: Promise<PreparedAuthority> = prepareAuthority(),
): Effect.Effect<RunningProxy, never, Scope.Scope> =>
  Effect.gen(function* () {
    const limits = { ...defaultProxyLimits, ...config.limits }
    // The MCP gateway's reserved name is allowed (DNS, SNI) only for a session that has one.
    const policy = makeAccessPolicy(
      config.mcpGateway === undefined ? config : { ...config, allowOut: [...config.allowOut, mcpHost] },
    )
    const secrets = secretNeedles(policy.secrets.map((s) => s.value))
    // Released last: whatever the throttle still holds is written after the listeners closed.
    const audit = yield* Effect.acquireRelease(
      Effect.sync(() => makeAuditLog(write, secrets)),
      (a) => Effect.sync(a.close),
    )
    const { ca, noSniCertificatePem } = yield* Effect.promise(() => authority)
    const leaves = makeLeafCertificateCache(ca)
    // `ca`: a server context given its own trust list skips loading Node's ~150 public roots (~20 ms
    // at start); the listeners verify no client certificate, so the list is never used.
    const defaultCertificate = { key: ca.leafKeyPem, cert: noSniCertificatePem, ca: ca.certificatePem }
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => makeUpstreamPool(config.upstream ?? {}, limits.upstreamConnectTimeoutMs)),
      (p) => Effect.sync(p.close),
    )
    const timeoutMs = config.approvalTimeoutMs ?? defaultApprovalTimeoutMs
    const gate = yield* Effect.acquireRelease(
      Effect.sync(() => makeEgressGate(config.approvals ?? [], timeoutMs, audit.send)),
      (g) => Effect.sync(g.close),
    )
    const deps = {
      gate: { gate, timeoutMs },
      judge: makeRequestJudge(policy),
      pool,
      audit,
      secrets,
      idleTimeoutMs: limits.idleTimeoutMs,
      connectTimeoutMs: limits.upstreamConnectTimeoutMs,
      ...(config.llmHistory === undefined ? {} : { llmHistory: config.llmHistory }),
      mcp: config.mcpGateway === undefined
        ? undefined
        : { socketPath: config.mcpGateway.socketPath, servers: new Set(config.mcpGateway.servers) },
    }
    const { address } = config.listen
    const https = yield* listener(() =>
      startHttpsListener({
        address,
        port: config.listen.https,
        limits,
        leaves,
        defaultCertificate,
        onRequest: makeRequestForwarder(deps),
        onUpgrade: makeWebSocketForwarder(deps),
        audit,
      })
    )
    const http = yield* listener(() =>
      startPlainHttpListener({ address, port: config.listen.http, limits, policy, audit })
    )
    const dns = yield* listener(() =>
      startDnsServer({
        address,
        port: config.listen.dns,
        answer: makeDnsAnswerer(policy, config.dnsAnswer, audit),
        maxConnections: limits.maxConnections,
        idleTimeoutMs: Math.min(limits.idleTimeoutMs, 30_000),
      })
    )
    return {
      caCertificatePem: ca.certificatePem,
      ports: { https: https.port, http: http.port, dnsUdp: dns.udpPort, dnsTcp: dns.tcpPort },
      audit,
      gate,
    }
  })
