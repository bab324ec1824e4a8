import type { McpDispatchServer } from "@paws/core"
import type { Schema } from "effect"

const maxAuditedBytes = 4096
const redacted = "[REDACTED]"

/**
 * A tool call's arguments for the audit trail (operator opted in per server): every secret value
 * of the server (env or header values of 4+ characters) replaced, and capped in size — an
 * argument may well carry a token the agent was given.
 */
/** The server's secret values (env or header values of 4+ characters), longest first. */
const secretsOf = (server: McpDispatchServer): ReadonlyArray<string> =>
  [...Object.values(server.env ?? {}), ...Object.values(server.headers ?? {})]
    .filter((v) => v.length >= 4)
    .sort((a, b) => b.length - a.length)

/** `value` as JSON text with every secret of `server` (as it appears in JSON strings) replaced. */
const redactedJson = (value: unknown, server: McpDispatchServer): { readonly text: string; readonly hit: boolean } => {
  let text = JSON.stringify(value)
  let hit = false
  for (const secret of secretsOf(server)) {
    const parts = text.split(JSON.stringify(secret).slice(1, -1))
    if (parts.length > 1) hit = true
    text = parts.join(redacted)
  }
  return { text, hit }
}

/** Free text (an error message the guest will read) with the server's secrets replaced. */
export const redactServerSecrets = (text: string, server: McpDispatchServer): string =>
  secretsOf(server).reduce((t, secret) => t.split(secret).join(redacted), text)

/**
 * A tool result with the server's own secrets redacted: a server that echoes its token (an
 * error message quoting its config, a debug tool) must not hand it to the guest.
 */
export const withoutServerSecrets = <A>(
  result: A,
  server: McpDispatchServer,
): { readonly result: A; readonly hit: boolean } => {
  const { text, hit } = redactedJson(result, server)
  return { result: hit ? JSON.parse(text) as A : result, hit }
}

export const auditedArguments = (args: unknown, server: McpDispatchServer): Schema.Json => {
  if (args === undefined) return null
  const { text } = redactedJson(args, server)
  if (text.length > maxAuditedBytes) return { truncated: text.slice(0, maxAuditedBytes) }
  try {
    return JSON.parse(text) as Schema.Json
  } catch {
    return { redacted: text }
  }
}
