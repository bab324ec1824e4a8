/**
 * The contract between a node and the `paws proxy` process it spawns for one VM.
 *
 * Lifecycle (parent = the node's ProxySupervisor):
 * 1. Parent spawns `node ...proxyExecArgv proxy/src/main.ts` (script `npm run proxy`) with stdio
 *    `["pipe", "pipe", "inherit"]`. No secrets in argv or env, ever.
 * 2. Parent writes ONE line to stdin: `JSON.stringify(Schema.encodeSync(ProxyConfig)(config)) + "\n"`.
 *    It keeps stdin open afterwards: further lines are `ProxyDecision`s for held requests (others are ignored).
 * 3. The proxy writes NDJSON `ProxyMessage`s to stdout, one per line: first `ready` (CA certificate,
 *    actual bound ports), then `audit` events, `approval` requests (a request held under `approvals`
 *    until a decision line or `approvalTimeoutMs`); `error` for problems (`fatal: true` precedes exit code 2).
 *    stderr carries human diagnostics only (never secrets, never audit).
 * 4. Stop: close the proxy's stdin (EOF) or send SIGTERM/SIGINT → listeners close, process exits 0.
 *    stdin EOF also happens when the parent dies, so the proxy never outlives its node.
 *    An invalid config line → one `error` message with `fatal: true`, exit code 2.
 */
import * as Schema from "effect/Schema" // per-module import: the effect barrel costs the proxy ~300 ms at spawn
import { EgressApprovalRule } from "./EgressApproval.ts"
import { HostPattern } from "./HostPattern.ts"
import { LlmExchange } from "./LlmExchange.ts"
import { McpServerName } from "./McpGrant.ts"
import { ProxyAuditEvent } from "./ProxyAudit.ts"
import { CredentialRule } from "./SessionSpec.ts"

/** Node flags for the proxy process: a small young generation keeps a busy proxy's RSS ~30% lower. */
export const proxyExecArgv: ReadonlyArray<string> = ["--max-semi-space-size=2"]

/** A literal IPv4 or IPv6 address (not a name): what listeners bind to and DNS answers carry. */
export const IpAddress = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$/, {
      message: "must be a literal IPv4 or IPv6 address",
    }),
  ),
).annotate({ identifier: "IpAddress" })

/** Where the proxy listens. Port 0 = ephemeral (tests, parallel proxies); the bound ports come back in `ready`. */
export const ProxyListen = Schema.Struct({
  /** The VM's host-side TAP address (127.0.0.1 in tests). */
  address: IpAddress,
  https: Schema.Port,
  http: Schema.Port,
  /** UDP and TCP. With 0 each gets its own ephemeral port; `ready` reports both. */
  dns: Schema.Port,
}).annotate({ identifier: "ProxyListen" })
export type ProxyListen = typeof ProxyListen.Type

/** Test-only redirection of one upstream name: connect here instead of resolving (port defaults to 443). */
export const UpstreamTarget = Schema.Struct({
  address: IpAddress,
  port: Schema.optionalKey(Schema.Port),
}).annotate({ identifier: "UpstreamTarget" })
export type UpstreamTarget = typeof UpstreamTarget.Type

export const ProxyUpstream = Schema.Struct({
  /** PEM bundle that replaces the system trust store for upstream verification. */
  caBundlePem: Schema.optionalKey(Schema.String),
  /** Exact host name → address, consulted before DNS (tests point names at loopback servers). */
  resolve: Schema.optionalKey(Schema.Record(Schema.String, UpstreamTarget)),
  /**
   * Permit upstream addresses that are loopback, private, link-local, CGNAT or metadata.
   * Off by default; only tests (whose upstreams live on loopback) turn it on.
   */
  allowPrivateUpstreams: Schema.optionalKey(Schema.Boolean),
}).annotate({ identifier: "ProxyUpstream" })
export type ProxyUpstream = typeof ProxyUpstream.Type

const positiveInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))

/** Resource limits; every field optional, `defaultProxyLimits` fills the gaps. */
export const ProxyLimits = Schema.Struct({
  maxHeaderBytes: Schema.optionalKey(positiveInt),
  maxConnections: Schema.optionalKey(positiveInt),
  /** A connection with no traffic either way for this long is closed (SSE keep-alives reset it). */
  idleTimeoutMs: Schema.optionalKey(positiveInt),
  /** Time allowed for the TLS handshake plus complete request headers (slowloris). */
  headersTimeoutMs: Schema.optionalKey(positiveInt),
  upstreamConnectTimeoutMs: Schema.optionalKey(positiveInt),
}).annotate({ identifier: "ProxyLimits" })
export type ProxyLimits = typeof ProxyLimits.Type

export const defaultProxyLimits = {
  maxHeaderBytes: 32 * 1024,
  maxConnections: 512,
  idleTimeoutMs: 5 * 60 * 1000,
  headersTimeoutMs: 15 * 1000,
  upstreamConnectTimeoutMs: 10 * 1000,
} as const satisfies Required<ProxyLimits>

/** Everything one proxy needs, sent as the first stdin line. Contains credential values: never log it. */
export const ProxyConfig = Schema.Struct({
  listen: ProxyListen,
  /** The address DNS answers carry for allowlisted names: where the VM's firewall DNATs 80/443 to this proxy. */
  dnsAnswer: IpAddress,
  allowOut: Schema.Array(HostPattern),
  /** Host pattern → headers injected (replacing any client-sent header of the same name), over TLS only. */
  credentials: Schema.Record(HostPattern, CredentialRule),
  upstream: Schema.optionalKey(ProxyUpstream),
  limits: Schema.optionalKey(ProxyLimits),
  /** Record exchanges with LLM APIs (bodies up to `maxBytes` each, redacted) as `llm` messages. */
  llmHistory: Schema.optionalKey(Schema.Struct({ maxBytes: positiveInt })),
  /**
   * The node's MCP gateway for this session: the proxy answers `mcp.paws.internal` in DNS and
   * forwards its HTTPS requests (plain HTTP) for `/{server}` to this unix socket, which the node serves. The proxy
   * holds no MCP secret and starts no server. Absent: the name is not on the allowlist.
   */
  mcpGateway: Schema.optionalKey(
    Schema.Struct({
      socketPath: Schema.String.pipe(Schema.check(Schema.isMinLength(1))),
      /** The servers the session may use: a path naming any other is refused here, never forwarded. */
      servers: Schema.Array(McpServerName),
    }),
  ),
  /** Requests held until the parent sends an approving `ProxyDecision`. */
  approvals: Schema.optionalKey(Schema.Array(EgressApprovalRule)),
  /** How long a held request waits before the guest gets a 403 (default 5 minutes). */
  approvalTimeoutMs: Schema.optionalKey(positiveInt),
}).annotate({ identifier: "ProxyConfig" })
export type ProxyConfig = typeof ProxyConfig.Type

/** Ports actually bound (differs from the config when it asked for 0). */
export const ProxyPorts = Schema.Struct({
  https: Schema.Port,
  http: Schema.Port,
  dnsUdp: Schema.Port,
  dnsTcp: Schema.Port,
}).annotate({ identifier: "ProxyPorts" })
export type ProxyPorts = typeof ProxyPorts.Type

/** The proxy is listening on every port; `caCertificatePem` is the public per-VM CA to install in the guest. */
export const ProxyReadyMessage = Schema.TaggedStruct("ready", {
  pid: Schema.Int,
  caCertificatePem: Schema.String,
  ports: ProxyPorts,
  startupMs: Schema.Number,
}).annotate({ identifier: "ProxyReadyMessage" })

export const ProxyAuditMessage = Schema.TaggedStruct("audit", {
  event: ProxyAuditEvent,
}).annotate({ identifier: "ProxyAuditMessage" })

export const ProxyErrorMessage = Schema.TaggedStruct("error", {
  message: Schema.String,
  /** true: the proxy exits right after this message. */
  fatal: Schema.Boolean,
}).annotate({ identifier: "ProxyErrorMessage" })

export const ProxyLlmMessage = Schema.TaggedStruct("llm", {
  exchange: LlmExchange,
}).annotate({ identifier: "ProxyLlmMessage" })
/** A request held for approval: the parent asks a human and answers with a `ProxyDecision` line. */
export const ProxyApprovalMessage = Schema.TaggedStruct("approval", {
  requestId: Schema.String,
  /** The matching rule, as configured. */
  rule: Schema.String,
  host: Schema.String,
  method: Schema.String,
  /** Path without query values (like audit paths). */
  path: Schema.String,
}).annotate({ identifier: "ProxyApprovalMessage" })

/** A stdin line after the config: the decision on a held request. */
export const ProxyDecision = Schema.TaggedStruct("decision", {
  requestId: Schema.String,
  approve: Schema.Boolean,
}).annotate({ identifier: "ProxyDecision" })
export type ProxyDecision = typeof ProxyDecision.Type

export const encodeProxyDecisionLine = (d: ProxyDecision): string => JSON.stringify(d) + "\n"

/** One NDJSON line on the proxy's stdout. */
export const ProxyMessage = Schema.Union([
  ProxyReadyMessage,
  ProxyAuditMessage,
  ProxyErrorMessage,
  ProxyLlmMessage,
  ProxyApprovalMessage,
]).annotate({
  identifier: "ProxyMessage",
})
export type ProxyMessage = typeof ProxyMessage.Type

/** Parses one stdout line from a proxy (throws on a malformed line). */
export const decodeProxyMessageLine: (line: string) => ProxyMessage = Schema.decodeUnknownSync(
  Schema.fromJsonString(ProxyMessage),
)

/** The stdin line that configures a proxy (ends with "\n"). */
export const encodeProxyConfigLine = (config: ProxyConfig): string =>
  JSON.stringify(Schema.encodeSync(ProxyConfig)(config)) + "\n"
