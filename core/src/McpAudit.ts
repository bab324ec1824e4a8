import * as Schema from "effect/Schema"

export const McpDecision = Schema.Literals([
  "allowed", // forwarded to the server; `error` set when the server or the call failed
  "refused", // not on the session's allowlist, over the server's maxCallsPerMinute, or a human denied it / no decision in time
  "server_error", // the server could not be started or exited (crash): the call could not be made
]).annotate({ identifier: "McpDecision" })
export type McpDecision = typeof McpDecision.Type

/**
 * One MCP tool call through the node's gateway. `arguments` only when the operator enabled
 * `auditArguments` for the server, with the server's secret values redacted.
 */
export const McpToolCallEvent = Schema.Struct({
  time: Schema.String,
  server: Schema.String,
  tool: Schema.String,
  decision: McpDecision,
  durationMs: Schema.Number,
  /** The tool answered with `isError: true`, or why the call failed. */
  error: Schema.optionalKey(Schema.String),
  /** The result quoted one of the server's secret values, which the gateway replaced before the guest saw it. */
  secretRedacted: Schema.optionalKey(Schema.Boolean),
  arguments: Schema.optionalKey(Schema.Json),
}).annotate({ identifier: "McpToolCallEvent" })
export type McpToolCallEvent = typeof McpToolCallEvent.Type
