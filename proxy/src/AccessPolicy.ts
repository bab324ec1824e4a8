import { hostAllowed, hostMatches, normalizeHost } from "@paws/core/HostPattern"
import type { ProxyConfig } from "@paws/core/ProxyConfig"

/** One header to set on the way out: the name as configured (lower-cased) and its value. */
export interface Injection {
  readonly name: string
  readonly value: string
}

/** A credential value and the host patterns whose rules carry it (its owners). */
export interface KnownSecret {
  readonly value: string
  readonly owners: ReadonlyArray<string>
}

/**
 * The allowlist and the credential rules of one session, answering per host. Results are
 * memoised per host name: the same few names are asked about on every request.
 */
export interface AccessPolicy {
  readonly allowed: (host: string) => boolean
  /** Headers to inject for a request over TLS to `host` (every matching rule, most specific last). */
  readonly injections: (host: string) => ReadonlyArray<Injection>
  /** Credential values `host` must never receive. */
  readonly foreignSecrets: (host: string) => ReadonlyArray<string>
  readonly secrets: ReadonlyArray<KnownSecret>
}

/** Exact patterns win over wildcards; among wildcards the longer (more specific) wins. */
const specificity = (pattern: string): number => (pattern.startsWith("*.") ? pattern.length : 10_000)

export const makeAccessPolicy = (
  config: Pick<ProxyConfig, "allowOut" | "credentials">,
): AccessPolicy => {
  const rules = Object.entries(config.credentials).sort(([a], [b]) => specificity(a) - specificity(b))
  const owners = new Map<string, Array<string>>()
  for (const [pattern, rule] of rules) {
    for (const value of Object.values(rule.headers)) owners.set(value, [...(owners.get(value) ?? []), pattern])
  }
  const secrets: ReadonlyArray<KnownSecret> = [...owners].map(([value, owners]) => ({ value, owners }))

  const memo = <A>(f: (host: string) => A) => {
    const cache = new Map<string, A>()
    return (host: string): A => {
      const key = normalizeHost(host)
      let hit = cache.get(key)
      if (hit === undefined) {
        hit = f(key)
        if (cache.size > 4096) cache.clear()
        cache.set(key, hit)
      }
      return hit
    }
  }

  return {
    allowed: memo((host) => hostAllowed(config.allowOut, host)),
    injections: memo((host) => {
      const byName = new Map<string, string>()
      for (const [pattern, rule] of rules) {
        if (!hostMatches(pattern, host)) continue
        for (const [name, value] of Object.entries(rule.headers)) byName.set(name.toLowerCase(), value)
      }
      return [...byName].map(([name, value]) => ({ name, value }))
    }),
    foreignSecrets: memo((host) =>
      secrets.filter((s) => !s.owners.some((p) => hostMatches(p, host))).map((s) => s.value)
    ),
    secrets,
  }
}
