import type { McpToolCallEvent } from "@paws/core"
import type { ProxyAuditEvent, SessionStatus } from "@paws/core"
import type { AuditRecord } from "./AuditLog.ts"

/** Audit rows for sessions, built in one place so SessionStore's hooks stay one line each. */

/** A session changed status (`actor`: the key that created it, else `system`). */
export const statusChange = (
  session: string,
  status: SessionStatus,
  detail: { readonly reason?: string | undefined; readonly node?: string | undefined } = {},
  actor = "system",
): AuditRecord => ({
  actor,
  action: "session.status",
  target: session,
  result: status,
  session,
  detail: {
    ...(detail.reason === undefined ? {} : { reason: detail.reason }),
    ...(detail.node === undefined ? {} : { node: detail.node }),
  },
})

/**
 * One proxy egress decision as the node reported it: host, method, path (no query values),
 * status, the names of injected headers. Never a header or body value: the event carries none.
 */
export const egressDecision = (session: string, node: string | null, e: ProxyAuditEvent): AuditRecord => ({
  actor: node === null ? "system" : `node:${node}`,
  action: "egress",
  target: e.host,
  result: e.decision,
  session,
  detail: {
    time: e.time,
    ...(e.method === undefined ? {} : { method: e.method }),
    ...(e.path === undefined ? {} : { path: e.path }),
    ...(e.status === undefined ? {} : { status: e.status }),
    ...(e.injected === undefined ? {} : { injected: e.injected }),
    ...(e.count === undefined ? {} : { count: e.count }),
    ...(e.reason === undefined ? {} : { reason: e.reason }),
  },
})

/** One MCP tool call through the node's gateway: server, tool, decision, duration; never arguments or results. */
export const mcpToolCall = (session: string, node: string | null, e: McpToolCallEvent): AuditRecord => ({
  actor: node === null ? "system" : `node:${node}`,
  action: "mcp.call",
  target: `${e.server}/${e.tool}`,
  result: e.decision,
  session,
  detail: {
    time: e.time,
    durationMs: e.durationMs,
    ...(e.error === undefined ? {} : { error: e.error.slice(0, 500) }),
    ...(e.secretRedacted === true ? { secretRedacted: true } : {}),
  },
})

/** The session's egress decisions past PAWS_MAX_AUDIT_ROWS: one row with their count, like its events. */
export const egressDropped = (session: string, dropped: number, cap: number): AuditRecord => ({
  actor: "system",
  action: "egress",
  target: "*",
  result: "audit_dropped",
  session,
  detail: { count: dropped, reason: `${dropped} audit events dropped after the cap of ${cap} per session` },
})
