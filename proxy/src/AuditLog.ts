import type { ProxyAuditEvent } from "../../core/src/ProxyAudit.ts"
import type { ProxyMessage } from "../../core/src/ProxyConfig.ts"
import { redactText } from "./SecretScanner.ts"
import type { SecretNeedles } from "./SecretScanner.ts"

/**
 * Writes NDJSON `ProxyMessage`s to the parent (stdout). Every line passes a last redaction over
 * the known credential values, so a value can never reach the parent's logs through a reason,
 * a path or a host, whatever the code that built the event did.
 */
export interface AuditLog {
  readonly send: (message: ProxyMessage) => void
  readonly record: (event: Omit<ProxyAuditEvent, "time">) => void
}

export const makeAuditLog = (
  write: (line: string) => void,
  secrets: SecretNeedles,
): AuditLog => {
  const send = (message: ProxyMessage) => write(redactText(JSON.stringify(message), secrets) + "\n")
  return {
    send,
    record: (event) => send({ _tag: "audit", event: { time: new Date().toISOString(), ...event } }),
  }
}

/** The path with query values removed: `/v1/x?key=secret&b=1` → `/v1/x?key&b`. */
export const auditPath = (url: string): string => {
  const q = url.indexOf("?")
  if (q === -1) return url.slice(0, 2048)
  const keys = url.slice(q + 1).split("&").map((kv) => kv.split("=")[0]!).filter((k) => k.length > 0)
  return (url.slice(0, q) + (keys.length > 0 ? "?" + keys.join("&") : "")).slice(0, 2048)
}
