import * as Schema from "effect/Schema" // per-module import: the effect barrel costs the proxy ~300 ms at spawn
import { HostPattern } from "./HostPattern.ts"
import { NodeLabels } from "./NodeLabels.ts"
import { McpGrants } from "./McpGrant.ts"
import { EgressApprovalRule } from "./EgressApproval.ts"

/** RFC 9110 `token`: the characters a header field name may contain. */
export const headerNameRegExp = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/**
 * Header values: visible ASCII/obs-text, spaces and tabs; never CR, LF, NUL or other controls
 * (header injection), nor characters above U+00FF, which no HTTP/1.1 stack can send (fuzz-config
 * found that such a credential value made every request to its host hang at the proxy).
 */
export const headerValueRegExp = /^[\t\x20-\x7e\x80-\xff]*$/
export const envNameRegExp = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Hard ceilings that no configuration can raise; configured maxima (SessionLimits) sit below them. */
export const hardLimits = {
  scriptBytes: 1024 * 1024,
  promptBytes: 256 * 1024,
  envEntries: 256,
  envValueBytes: 32 * 1024,
  allowOutEntries: 256,
  headersPerHost: 32,
  headerValueBytes: 8 * 1024,
  metadataEntries: 64,
  metadataValueBytes: 1024,
  timeoutMs: 24 * 60 * 60 * 1000,
  vcpus: 64,
  memoryMB: 256 * 1024,
} as const

export const HeaderName = Schema.String.pipe(
  Schema.check(Schema.isPattern(headerNameRegExp, { message: "must be an RFC 9110 header name (token characters)" })),
).annotate({ identifier: "HeaderName" })

export const HeaderValue = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(headerValueRegExp, {
      message: "must not contain CR, LF, NUL, other control characters or characters above U+00FF",
    }),
    Schema.isMaxLength(hardLimits.headerValueBytes),
  ),
)

export const EnvName = Schema.String.pipe(
  Schema.check(Schema.isPattern(envNameRegExp, { message: "must match [A-Za-z_][A-Za-z0-9_]*" })),
)

export const ScriptWorkload = Schema.Struct({
  type: Schema.Literal("script"),
  script: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1), Schema.isMaxLength(hardLimits.scriptBytes)),
  ),
  env: Schema.optionalKey(
    Schema.Record(EnvName, Schema.String.pipe(Schema.check(Schema.isMaxLength(hardLimits.envValueBytes)))).pipe(
      Schema.check(Schema.isMaxProperties(hardLimits.envEntries)),
    ),
  ),
  /** Keep the VM running after the script ends (for exec, files), until cancelled or the session's timeout. */
  keepAlive: Schema.optionalKey(Schema.Boolean),
}).annotate({ identifier: "ScriptWorkload" })
export type ScriptWorkload = typeof ScriptWorkload.Type

/** Agents the node knows how to run non-interactively (AgentWorkload.ts on the node). */
export const agentNames = ["claude-code", "custom"] as const

/**
 * An AI agent run non-interactively in the guest: its transcript is the session's stdout, its final
 * answer the result's output. The agent sees only a per-session placeholder API key; the proxy
 * injects the real one from `network.credentials`.
 */
export const AgentWorkload = Schema.Struct({
  type: Schema.Literal("agent"),
  agent: Schema.optionalKey(Schema.Literals(agentNames)),
  /** `custom` only: the agent's argv, run in the guest with the prompt on stdin. */
  command: Schema.optionalKey(
    Schema.Array(Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(4096)))).pipe(
      Schema.check(Schema.isMinLength(1), Schema.isMaxLength(64)),
    ),
  ),
  prompt: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(hardLimits.promptBytes))),
  model: Schema.optionalKey(
    Schema.String.pipe(
      Schema.check(Schema.isPattern(/^[A-Za-z0-9._:\[\]-]{1,128}$/, { message: "must be a model id" })),
    ),
  ),
  maxTurns: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 1000 })))),
  allowedTools: Schema.optionalKey(
    Schema.Array(
      Schema.String.pipe(
        Schema.check(Schema.isPattern(/^[A-Za-z0-9_*:.()/ -]{1,200}$/, { message: "must be a tool name or rule" })),
      ),
    ).pipe(Schema.check(Schema.isMaxLength(64))),
  ),
  env: ScriptWorkload.fields.env,
}).annotate({ identifier: "AgentWorkload" })
export type AgentWorkload = typeof AgentWorkload.Type

/** No workload of its own: the VM stays up for exec, files and shells until cancelled or its timeout. */
export const InteractiveWorkload = Schema.Struct({
  type: Schema.Literal("interactive"),
  env: ScriptWorkload.fields.env,
}).annotate({ identifier: "InteractiveWorkload" })
export type InteractiveWorkload = typeof InteractiveWorkload.Type

export const Workload = Schema.Union([ScriptWorkload, AgentWorkload, InteractiveWorkload])
export type Workload = typeof Workload.Type

/** The workload's free text and the field it came from: a script, or an agent's prompt. */
export const workloadText = (w: Workload): { readonly path: string; readonly text: string } =>
  w.type === "script"
    ? { path: "workload.script", text: w.script }
    : w.type === "agent"
    ? { path: "workload.prompt", text: w.prompt }
    : { path: "workload", text: "" }

/** Whether the VM stays up once its workload (if any) is done: interactive, or a script with keepAlive. */
export const keepsAlive = (w: Workload): boolean =>
  w.type === "interactive" || (w.type === "script" && w.keepAlive === true)

export const Resources = Schema.Struct({
  vcpus: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: hardLimits.vcpus }))),
  memoryMB: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 64, maximum: hardLimits.memoryMB }))),
}).annotate({ identifier: "Resources" })
export type Resources = typeof Resources.Type

/** Headers injected for one host pattern. On input they carry values; stored and returned, only names. */
export const CredentialRule = Schema.Struct({
  headers: Schema.Record(HeaderName, HeaderValue).pipe(
    Schema.check(Schema.isMinProperties(1), Schema.isMaxProperties(hardLimits.headersPerHost)),
  ),
}).annotate({ identifier: "CredentialRule" })
export type CredentialRule = typeof CredentialRule.Type

export const Network = Schema.Struct({
  allowOut: Schema.Array(HostPattern).pipe(Schema.check(Schema.isMaxLength(hardLimits.allowOutEntries))),
  credentials: Schema.optionalKey(Schema.Record(HostPattern, CredentialRule)),
  /** Required (true) for a credential on a `*.` pattern: it goes to every host under that domain. */
  allowWildcardCredential: Schema.optionalKey(Schema.Boolean),
  /**
   * Requests the proxy holds until a human approves them (GET /v1/sessions/{id}/egress-approvals):
   * `HOST`, `HOST/PATH` or `METHOD HOST/PATH`, e.g. `POST api.github.com/repos/*\/merges`. The host
   * must also be allowed by `allowOut`.
   */
  approvals: Schema.optionalKey(Schema.Array(EgressApprovalRule).pipe(Schema.check(Schema.isMaxLength(64)))),
  /**
   * How long a held request (or an MCP `approve` tool call) waits for a decision before the guest
   * gets a 403 (a JSON-RPC error) (default 300, max 3600).
   */
  approvalTimeoutSeconds: Schema.optionalKey(
    Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 3600 }))),
  ),
}).annotate({ identifier: "Network" })
export type Network = typeof Network.Type

export const SnapshotName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: "must be 1-64 chars of a-z 0-9 . _ -" })),
).annotate({ identifier: "SnapshotName" })

export const Metadata = Schema.Record(
  Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 128))),
  Schema.String.pipe(Schema.check(Schema.isMaxLength(hardLimits.metadataValueBytes))),
).pipe(Schema.check(Schema.isMaxProperties(hardLimits.metadataEntries)))

export const defaultSnapshot = "default"

/** What a client submits to create a session. */
export const SessionSpec = Schema.Struct({
  snapshot: Schema.optionalKey(SnapshotName),
  workload: Workload,
  resources: Schema.optionalKey(Resources),
  timeoutMs: Schema.optionalKey(
    Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1000, maximum: hardLimits.timeoutMs }))),
  ),
  network: Schema.optionalKey(Network),
  metadata: Schema.optionalKey(Metadata),
  /** Only nodes carrying every one of these labels (PAWS_NODE_LABELS) run the session. */
  nodeSelector: Schema.optionalKey(NodeLabels.pipe(Schema.check(Schema.isMaxProperties(16)))),
  /** MCP servers (registered in control) the guest may reach at `https://mcp.paws.internal/{name}`. */
  mcp: Schema.optionalKey(McpGrants),
  /** Wait in `awaiting_approval` until a key with scope `approve` approves (or denies) the session. */
  requiresApproval: Schema.optionalKey(Schema.Boolean),
  /** With `requiresApproval`: deny automatically after this many minutes (1 to 10080 = a week). */
  approvalExpiresInMinutes: Schema.optionalKey(
    Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 10_080 }))),
  ),
}).annotate({ identifier: "SessionSpec" })
export type SessionSpec = typeof SessionSpec.Type
