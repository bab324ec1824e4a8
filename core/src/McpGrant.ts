import * as Schema from "effect/Schema"

/**
 * MCP tool servers registered in control and reached by guests through their proxy at
 * `https://mcp.paws.internal/{name}` (the node's MCP gateway bridges to the real server).
 */
export const mcpHost = "mcp.paws.internal"

export const McpServerName = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: "must be 1-64 chars of a-z 0-9 _ - (starting a-z 0-9)" }),
  ),
).annotate({ identifier: "McpServerName" })

export const McpToolName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9_.\/-]{1,128}$/, { message: "must be an MCP tool name" })),
)

/**
 * One entry of a session's `mcp`: a server name (all its tools), or a server narrowed to some
 * tools, some of which (`approve`) wait for a human's decision on every call.
 */
export const McpGrant = Schema.Union([
  McpServerName,
  Schema.Struct({
    server: McpServerName,
    tools: Schema.optionalKey(Schema.Array(McpToolName).pipe(Schema.check(Schema.isMaxLength(256)))),
    /**
     * Tools whose every `tools/call` is held until a human approves it at
     * GET /v1/sessions/{id}/egress-approvals (like `network.approvals`); refused on deny or timeout.
     */
    approve: Schema.optionalKey(Schema.Array(McpToolName).pipe(Schema.check(Schema.isMaxLength(256)))),
  }).annotate({ identifier: "McpToolGrant" }),
]).annotate({ identifier: "McpGrant" })
export type McpGrant = typeof McpGrant.Type

export const McpGrants = Schema.Array(McpGrant).pipe(Schema.check(Schema.isMaxLength(32)))

export const grantServer = (g: McpGrant): string => (typeof g === "string" ? g : g.server)
export const grantTools = (g: McpGrant): ReadonlyArray<string> | undefined =>
  typeof g === "string" ? undefined : g.tools
export const grantApprove = (g: McpGrant): ReadonlyArray<string> | undefined =>
  typeof g === "string" ? undefined : g.approve
