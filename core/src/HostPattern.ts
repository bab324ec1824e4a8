import * as Schema from "effect/Schema" // per-module import: the effect barrel costs the proxy ~300 ms at spawn

const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
const hostPatternRegExp = new RegExp(`^(?:\\*\\.)?(?:${label}\\.)*${label}$`, "i")

/** Why a host pattern is not acceptable, or undefined when it is. */
export const hostPatternProblem = (value: string): string | undefined => {
  if (value.length === 0) return "must not be empty"
  if (value.includes("://") || value.includes("/")) return "must be a host name, not a URL (e.g. api.example.com)"
  if (value.includes(":")) return "must be a host name without a port or IPv6 address"
  if (value.length > 253) return "must be at most 253 characters"
  if (!hostPatternRegExp.test(value)) {
    return 'must be a DNS name (labels of a-z, 0-9, -) optionally starting with "*."'
  }
  const labels = value.split(".")
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return "must be a DNS name, not an IP address"
  if (labels.length < 2 || (labels.length === 2 && labels[0] === "*")) {
    return 'must have at least two labels (a bare TLD or "*.tld" is too broad)'
  }
  return undefined
}

/** An allowlist entry: an exact DNS name or a `*.` wildcard (which does not match the apex). */
export const HostPattern = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => hostPatternProblem(s) ?? true)),
).annotate({
  identifier: "HostPattern",
  description: "exact host name (api.example.com) or wildcard (*.example.com; does not match the apex)",
})
export type HostPattern = typeof HostPattern.Type

/** Lower-case and strip one trailing dot, the form in which hosts are compared. */
export const normalizeHost = (host: string): string => {
  const lower = host.toLowerCase()
  return lower.endsWith(".") ? lower.slice(0, -1) : lower
}

/** Whether `host` matches `pattern`: exact, or `*.suffix` matching any deeper name but not `suffix` itself. */
export const hostMatches = (pattern: string, host: string): boolean => {
  const p = normalizeHost(pattern)
  const h = normalizeHost(host)
  if (p.startsWith("*.")) {
    const suffix = p.slice(1) // ".example.com"
    return h.length > suffix.length && h.endsWith(suffix)
  }
  return p === h
}

export const hostAllowed = (patterns: ReadonlyArray<string>, host: string): boolean =>
  patterns.some((p) => hostMatches(p, host))
