import type { McpDispatchServer } from "@paws/core"
import type { Schema } from "effect"

const maxAuditedBytes = 4096
const redacted = "[REDACTED]"

/**
 * A tool call's arguments for the audit trail (operator opted in per server): every secret value
 * of the server (env or header values of 4+ characters) replaced, and capped in size — an
 * argument may well carry a token the agent was given.
 */
export const auditedArguments = (args: unknown, server: McpDispatchServer): Schema.Json => {
  if (args === undefined) return null
  const secrets = [...Object.values(server.env ?? {}), ...Object.values(server.headers ?? {})]
    .filter((v) => v.length >= 4)
    .sort((a, b) => b.length - a.length)
  let text = JSON.stringify(args)
  for (const secret of secrets) text = text.split(JSON.stringify(secret).slice(1, -1)).join(redacted)
  if (text.length > maxAuditedBytes) return { truncated: text.slice(0, maxAuditedBytes) }
  try {
    return JSON.parse(text) as Schema.Json
  } catch {
    return { redacted: text }
  }
}
