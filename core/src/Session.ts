import { Schema } from "effect"
import { NodeId, SessionId } from "./Ids.ts"
import { NodeLabels } from "./NodeLabels.ts"
import { HeaderName, Metadata, Resources, SnapshotName, Workload } from "./SessionSpec.ts"
import { HostPattern } from "./HostPattern.ts"
import { McpGrants } from "./McpGrant.ts"
import { SessionStatus } from "./SessionStatus.ts"

/** The spec as stored and shown: credential header names only; values live in the vault. */
export const SessionSpecView = Schema.Struct({
  snapshot: SnapshotName,
  workload: Workload,
  resources: Resources,
  timeoutMs: Schema.Int,
  network: Schema.Struct({
    allowOut: Schema.Array(HostPattern),
    credentials: Schema.optionalKey(Schema.Record(HostPattern, Schema.Struct({ headers: Schema.Array(HeaderName) }))),
    approvals: Schema.optionalKey(Schema.Array(Schema.String)),
    approvalTimeoutSeconds: Schema.optionalKey(Schema.Int),
  }),
  metadata: Schema.optionalKey(Metadata),
  nodeSelector: Schema.optionalKey(NodeLabels),
  mcp: Schema.optionalKey(McpGrants),
  requiresApproval: Schema.optionalKey(Schema.Boolean),
  approvalExpiresInMinutes: Schema.optionalKey(Schema.Int),
}).annotate({ identifier: "SessionSpecView" })
export type SessionSpecView = typeof SessionSpecView.Type

export const SessionResult = Schema.Struct({
  exitCode: Schema.NullOr(Schema.Int),
  stdout: Schema.String,
  stderr: Schema.String,
  /** Parsed `/output/result.json`, or null when the workload wrote none. */
  output: Schema.NullOr(Schema.Json),
  /** True when stdout or stderr hit the byte cap. */
  truncated: Schema.Boolean,
  /** A problem with the output (unparseable result.json, too large), or why the session failed. */
  error: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "SessionResult" })
export type SessionResult = typeof SessionResult.Type

/** Which trigger created a session (`manual` for `POST /v1/daemons/{name}/run`). */
export const SessionTrigger = Schema.Struct({
  kind: Schema.Literals(["webhook", "github", "cron", "watch", "manual"]),
  name: Schema.String,
}).annotate({ identifier: "SessionTrigger" })
export type SessionTrigger = typeof SessionTrigger.Type

export const Session = Schema.Struct({
  id: SessionId,
  /** The project the session belongs to (that of the key that created it). */
  project: Schema.String,
  status: SessionStatus,
  spec: SessionSpecView,
  node: Schema.NullOr(NodeId),
  createdAt: Schema.String,
  startedAt: Schema.NullOr(Schema.String),
  completedAt: Schema.NullOr(Schema.String),
  durationMs: Schema.NullOr(Schema.Int),
  /** Why the session ended the way it did (e.g. `node_lost`, `cancelled_by_user`). */
  reason: Schema.NullOr(Schema.String),
  result: Schema.NullOr(SessionResult),
  /** The daemon that created this session (absent for sessions created directly). */
  daemon: Schema.optionalKey(Schema.String),
  trigger: Schema.optionalKey(SessionTrigger),
  /** While `awaiting_approval` with an expiry: when it is denied automatically. */
  approvalExpiresAt: Schema.optionalKey(Schema.String),
  /** While `pending` (GET /v1/sessions/{id} only): 1 + the sessions queued before it, of every project. */
  queuePosition: Schema.optionalKey(Schema.Int),
}).annotate({ identifier: "Session" })
export type Session = typeof Session.Type
