import { Schema } from "effect"
import { McpToolCallEvent } from "./McpAudit.ts"
import { ProxyAuditEvent } from "./ProxyAudit.ts"
import { SessionResult } from "./Session.ts"
import { SessionStatus } from "./SessionStatus.ts"

/** What a node streams back while it runs a session, and what clients see on /events. */
export const StatusEvent = Schema.TaggedStruct("status", {
  status: SessionStatus,
  at: Schema.String,
  reason: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "StatusEvent" })

export const OutputEvent = Schema.TaggedStruct("output", {
  stream: Schema.Literals(["stdout", "stderr"]),
  data: Schema.String,
}).annotate({ identifier: "OutputEvent" })

export const AuditEvent = Schema.TaggedStruct("audit", {
  event: ProxyAuditEvent,
}).annotate({ identifier: "AuditEvent" })

/** An MCP tool call through the node's gateway (audited like the proxy's decisions). */
export const McpEvent = Schema.TaggedStruct("mcp", {
  event: McpToolCallEvent,
}).annotate({ identifier: "McpEvent" })

export const ResultEvent = Schema.TaggedStruct("result", {
  result: SessionResult,
}).annotate({ identifier: "ResultEvent" })

/** The session's proxy holds a request until a human decides (POST …/egress-approvals/{requestId}/approve). */
export const EgressApprovalEvent = Schema.TaggedStruct("egress_approval", {
  requestId: Schema.String,
  rule: Schema.String,
  host: Schema.String,
  method: Schema.String,
  path: Schema.String,
}).annotate({ identifier: "EgressApprovalEvent" })

export const SessionEvent = Schema.Union([
  StatusEvent,
  OutputEvent,
  AuditEvent,
  McpEvent,
  ResultEvent,
  EgressApprovalEvent,
])
  .annotate({
    identifier: "SessionEvent",
  })
export type SessionEvent = typeof SessionEvent.Type
