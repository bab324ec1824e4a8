import { normalizeHost } from "./HostPattern.ts"
import type { FieldProblem } from "./SessionLimits.ts"
import type { Network } from "./SessionSpec.ts"

/**
 * A secret shorter than this is refused: it is guessable, and the proxy's echo redaction
 * (which scans responses for the secret) would match it in ordinary text.
 */
export const minCredentialSecretLength = 8

/** The secret part of a header value: an auth scheme (`Bearer x`) does not count towards its length. */
const secretOf = (value: string): string => value.replace(/^(?:bearer|basic|token|bot|apikey)\s+/i, "").trim()

/**
 * Suffixes under which anyone can register names (from the Public Suffix List: common
 * second-level country domains and shared hosting). A credential for `*.<suffix>` goes to
 * every stranger's site there. Deliberately small: `*.tld` is refused outright (HostPattern).
 */
const publicSuffixes = new Set([
  "co.uk",
  "org.uk",
  "me.uk",
  "ltd.uk",
  "plc.uk",
  "net.uk",
  "ac.uk",
  "gov.uk",
  "com.au",
  "net.au",
  "org.au",
  "co.nz",
  "co.jp",
  "ne.jp",
  "or.jp",
  "co.kr",
  "co.in",
  "co.za",
  "com.br",
  "com.cn",
  "com.mx",
  "com.tr",
  "com.sg",
  "com.hk",
  "com.tw",
  "github.io",
  "gitlab.io",
  "githubusercontent.com",
  "herokuapp.com",
  "vercel.app",
  "netlify.app",
  "pages.dev",
  "workers.dev",
  "web.app",
  "firebaseapp.com",
  "appspot.com",
  "blogspot.com",
  "azurewebsites.net",
  "cloudfront.net",
  "s3.amazonaws.com",
  "fly.dev",
  "onrender.com",
  "glitch.me",
  "ngrok.io",
  "ngrok-free.app",
  "trycloudflare.com",
])

/** Second-level labels that make `<label>.<two-letter country>` a public suffix in most countries. */
const registryLabels = new Set(["co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go"])

/** Whether `suffix` (the part after `*.`) looks like a public suffix rather than someone's domain. */
export const isPublicSuffixShaped = (suffix: string): boolean => {
  const s = normalizeHost(suffix)
  if (publicSuffixes.has(s)) return true
  const labels = s.split(".")
  return labels.length === 2 && registryLabels.has(labels[0]!) && /^[a-z]{2}$/.test(labels[1]!)
}

/**
 * Credential rules a request may not have: secrets shorter than 8 characters, and wildcard
 * host patterns unless `network.allowWildcardCredential` says the caller means it.
 */
export const credentialProblems = (network: Network | undefined): ReadonlyArray<FieldProblem> => {
  const problems: Array<FieldProblem> = []
  for (const [host, rule] of Object.entries(network?.credentials ?? {})) {
    if (host.startsWith("*.") && network?.allowWildcardCredential !== true) {
      problems.push({
        path: `network.credentials.${host}`,
        message: `is a wildcard: the credential would be sent to every host under ${host.slice(2)}; ` +
          'name the exact host, or set "network.allowWildcardCredential": true if that is what you want',
      })
    }
    for (const [name, value] of Object.entries(rule.headers)) {
      if (secretOf(value).length < minCredentialSecretLength) {
        problems.push({
          path: `network.credentials.${host}.headers.${name}`,
          message: `is shorter than ${minCredentialSecretLength} characters (not counting an auth scheme such as ` +
            "`Bearer `): too short to be a real secret or to be redacted reliably",
        })
      }
    }
  }
  return problems
}

/** Warnings for an accepted request: wildcard credentials over public-suffix-shaped domains. */
export const credentialWarnings = (network: Network | undefined): ReadonlyArray<string> =>
  Object.keys(network?.credentials ?? {}).flatMap((host) =>
    host.startsWith("*.") && isPublicSuffixShaped(host.slice(2))
      ? [
        `network.credentials.${host}: ${host.slice(2)} looks like a public suffix (anyone can register a name ` +
        "under it): the credential goes to every such site the session reaches",
      ]
      : []
  )
