import type { ApiScope } from "@paws/core"

/** One rule: a user whose claim `claim` is (or, for a list claim, contains) `value` gets `scopes`. */
export interface ScopeRule {
  readonly claim: string
  readonly value: string
  readonly scopes: ReadonlyArray<ApiScope>
}

const apiScopes: ReadonlyArray<ApiScope> = ["admin", "sessions:write", "read", "approve"]

/**
 * Parses PAWS_OIDC_SCOPE_MAP: comma-separated `CLAIM:VALUE=SCOPE[+SCOPE…]`, e.g.
 * `groups:paws-admins=admin,groups:paws-devs=sessions:write+read`. The claim name ends at the first
 * `:`; the value at the last `=`. Returns the rules, or a message saying what is wrong.
 */
export const parseScopeMap = (text: string): ReadonlyArray<ScopeRule> | string => {
  const entries = text.split(",").map((e) => e.trim()).filter((e) => e !== "")
  if (entries.length === 0) return "must map at least one claim value, e.g. groups:paws-admins=admin"
  const rules: Array<ScopeRule> = []
  for (const entry of entries) {
    const eq = entry.lastIndexOf("=")
    const colon = entry.indexOf(":")
    if (eq < 0 || colon < 1 || colon > eq - 2) {
      return `\`${entry}\` is not CLAIM:VALUE=SCOPE[+SCOPE…] (e.g. groups:paws-admins=admin)`
    }
    const scopes = entry.slice(eq + 1).split("+").map((s) => s.trim())
    const unknown = scopes.find((s) => !(apiScopes as ReadonlyArray<string>).includes(s))
    if (unknown !== undefined) return `\`${unknown}\` in \`${entry}\` is not a scope (${apiScopes.join(", ")})`
    rules.push({
      claim: entry.slice(0, colon).trim(),
      value: entry.slice(colon + 1, eq).trim(),
      scopes: scopes as Array<ApiScope>,
    })
  }
  return rules
}

const matches = (claim: unknown, value: string): boolean =>
  Array.isArray(claim) ? claim.some((c) => String(c) === value) : claim !== undefined && String(claim) === value

/** The scopes the rules grant a user with these claims (deduplicated; empty when none match). */
export const scopesFor = (rules: ReadonlyArray<ScopeRule>, claims: Record<string, unknown>): Array<ApiScope> => {
  const granted = new Set<ApiScope>()
  for (const rule of rules) if (matches(claims[rule.claim], rule.value)) rule.scopes.forEach((s) => granted.add(s))
  // `admin` implies the rest: keep the list short and readable.
  return granted.has("admin") ? ["admin"] : apiScopes.filter((s) => granted.has(s) && s !== "admin")
}
