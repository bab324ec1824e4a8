import * as Schema from "effect/Schema" // per-module import: the effect barrel costs the proxy ~300 ms at spawn

export const AuditDecision = Schema.Literals([
  "allowed", // forwarded upstream
  "denied_host", // SNI/name not on the allowlist
  "host_mismatch", // Host header differs from SNI (421)
  "no_sni",
  "redirected", // plain HTTP to an allowlisted host → https
  "blocked_address", // upstream resolved to a forbidden address
  "credential_leak", // a request carried a credential value to a host that does not own it
  "echo_redacted", // an injected value came back in a response and was redacted
  "upstream_error",
  "malformed_request", // framing or Host the proxy will not forward (request smuggling shapes): 400
  "method_refused", // TRACE/TRACK/CONNECT: 405
  "dns_answered",
  "dns_refused",
  "audit_suppressed", // the proxy's rate limit held back `count` events (the reason names their decisions)
  "audit_dropped", // control stored no more audit rows for this session after its cap; `count` were dropped
  "approval_held", // matched an approval rule: held until a human decides
  "approval_denied", // a human denied the held request: 403
  "approval_timeout", // no decision in time: 403
]).annotate({ identifier: "AuditDecision" })
export type AuditDecision = typeof AuditDecision.Type

/**
 * One proxy decision. Carries header names only, never values; the path has no query values.
 * With `count` (> 1) it stands for that many identical decisions (same decision, host, method,
 * path, status, reason) seen within one aggregation window: `time` is the first one's, and
 * bytes and `durationMs` are totals over all of them.
 */
export const ProxyAuditEvent = Schema.Struct({
  time: Schema.String,
  decision: AuditDecision,
  host: Schema.String,
  method: Schema.optionalKey(Schema.String),
  path: Schema.optionalKey(Schema.String),
  status: Schema.optionalKey(Schema.Int),
  bytesIn: Schema.optionalKey(Schema.Int),
  bytesOut: Schema.optionalKey(Schema.Int),
  durationMs: Schema.optionalKey(Schema.Number),
  injected: Schema.optionalKey(Schema.Array(Schema.String)),
  reason: Schema.optionalKey(Schema.String),
  count: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))),
}).annotate({ identifier: "ProxyAuditEvent" })
export type ProxyAuditEvent = typeof ProxyAuditEvent.Type
