import type { AuditDecision } from "@paws/core/ProxyAudit"
import { normalizeHost } from "@paws/core/HostPattern"
import type { AccessPolicy, Injection } from "./AccessPolicy.ts"
import { framingOf, headerValues, malformed, methodRefused, refusedMethods } from "./RequestFraming.ts"
import type { Framing } from "./RequestFraming.ts"
import { containsSecret, secretNeedles } from "./SecretScanner.ts"
import type { SecretNeedles } from "./SecretScanner.ts"

/** A refusal the agent can read: agents stop retrying a bypass when told plainly why. */
export interface Refusal {
  readonly status: number
  readonly decision: AuditDecision
  readonly reason: string
}

export interface Admission {
  readonly host: string
  readonly injections: ReadonlyArray<Injection>
  /** Values of other hosts' credentials: the request body is scanned for them when non-empty. */
  readonly foreign: SecretNeedles
  /** How the proxy frames the body upstream (never the guest's own framing bytes). */
  readonly framing: Framing
}

/** The parts of a parsed guest request the judge reads. */
export interface GuestRequest {
  readonly method?: string | undefined
  readonly httpVersion: string
  readonly url?: string | undefined
  readonly rawHeaders: ReadonlyArray<string>
}

const authorityRegExp = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::([0-9]{1,5}))?$/

/** The host of a Host header that is exactly an authority (`host[:port]`), normalised; undefined otherwise. */
export const authorityHost = (value: string): string | undefined => {
  const m = authorityRegExp.exec(value.trim())
  if (!m || (m[3] !== undefined && Number(m[3]) > 65535)) return undefined
  return normalizeHost(m[1] ?? m[2]!)
}

/** The name part of a Host header (`a.b:8443` → `a.b`, `[::1]:80` → `::1`), normalised. */
export const hostOfHeader = (value: string | undefined): string => {
  if (value === undefined) return ""
  const v = value.trim()
  if (v.startsWith("[")) return normalizeHost(v.slice(1, v.indexOf("]") === -1 ? undefined : v.indexOf("]")))
  const colon = v.indexOf(":")
  return normalizeHost(colon === -1 ? v : v.slice(0, colon))
}

export const refusals = {
  noSni: (): Refusal => ({
    status: 421,
    decision: "no_sni",
    reason: "the TLS connection did not name a server (SNI); connect using the host name, not an address",
  }),
  mismatch: (sni: string, host: string): Refusal => ({
    status: 421,
    decision: "host_mismatch",
    reason: `the Host header (${host || "missing"}) does not match the TLS server name (${sni}); ` +
      "send requests for a host over a connection opened to that host",
  }),
  denied: (host: string): Refusal => ({
    status: 403,
    decision: "denied_host",
    reason: `${host} is not on this sandbox's allowlist (network.allowOut), so the request was blocked. ` +
      "Retrying or using another route will not help; ask the session owner to allow the host",
  }),
  absoluteForm: (): Refusal => ({
    status: 400,
    decision: "host_mismatch",
    reason: "the request target must be a path (origin-form), not an absolute URL naming a host",
  }),
  unscannable: (host: string, encoding: string): Refusal => ({
    status: 502,
    decision: "upstream_error",
    reason: `${host} answered a request that carried a credential with Content-Encoding "${encoding.slice(0, 40)}", ` +
      "which the proxy cannot decode to check for an echoed credential, so the response was withheld",
  }),
  leak: (host: string): Refusal => ({
    status: 403,
    decision: "credential_leak",
    reason: `the request to ${host} carried a credential that belongs to another host; it was blocked`,
  }),
} as const

/** Decides a TLS request on SNI + Host + allowlist + credential ownership. */
export const makeRequestJudge = (policy: AccessPolicy) => {
  const foreignByHost = new Map<string, SecretNeedles>()
  const foreignFor = (host: string): SecretNeedles => {
    let needles = foreignByHost.get(host)
    if (needles === undefined) {
      needles = secretNeedles(policy.foreignSecrets(host))
      if (foreignByHost.size > 4096) foreignByHost.clear()
      foreignByHost.set(host, needles)
    }
    return needles
  }

  return (
    servername: string | false | undefined | null,
    req: GuestRequest,
    upgrade: boolean,
  ): Admission | Refusal => {
    if (!servername) return refusals.noSni()
    const sni = normalizeHost(servername)
    const method = req.method ?? "GET"
    if (refusedMethods.has(method)) return methodRefused(method)
    const { rawHeaders } = req
    const hosts = headerValues(rawHeaders, "host")
    if (hosts.length > 1) return malformed("a request may carry only one Host header")
    const host = hosts.length === 0 ? "" : authorityHost(hosts[0]!)
    if (host === undefined) return malformed("the Host header must be an authority: host[:port], nothing else")
    if (host !== sni) return refusals.mismatch(sni, host)
    const url = req.url ?? "/"
    // An absolute URL (or a `//host` path) would let a shared front end (CDN) route to a host other than the SNI.
    if ((!url.startsWith("/") || url.startsWith("//")) && !(url === "*" && method === "OPTIONS")) {
      return refusals.absoluteForm()
    }
    const framing = framingOf(method, req.httpVersion, rawHeaders, upgrade)
    if ("status" in framing) return framing
    if (!policy.allowed(sni)) return refusals.denied(sni)
    const foreign = foreignFor(sni)
    if (foreign.needles.length > 0) {
      if (containsSecret(url, foreign) || rawHeaders.some((h, i) => i % 2 === 1 && containsSecret(h, foreign))) {
        return refusals.leak(sni)
      }
    }
    return { host: sni, injections: policy.injections(sni), foreign, framing }
  }
}
export type RequestJudge = ReturnType<typeof makeRequestJudge>

export const isRefusal = (v: Admission | Refusal): v is Refusal => "status" in v

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
export const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
])

/** Framing headers: never copied from the guest, the proxy writes its own (RequestFraming). */
const framingNames = ["content-length", "transfer-encoding"]

/**
 * The request headers to send upstream as a flat [name, value, …] list: hop-by-hop headers and
 * any client header named by an injection dropped, then the injections appended (replace, never merge).
 */
export const upstreamRequestHeaders = (
  rawHeaders: ReadonlyArray<string>,
  injections: ReadonlyArray<Injection>,
  upgrade: boolean,
  framing: ReadonlyArray<string> = [],
): Array<string> => {
  const drop = new Set([...hopByHop, ...framingNames])
  drop.add("host") // re-added once below: a duplicate Host must not reach an upstream that reads the last one
  for (const { name } of injections) drop.add(name)
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === "connection") {
      for (const token of rawHeaders[i + 1]!.split(",")) drop.add(token.trim().toLowerCase())
    }
  }
  if (injections.length > 0) {
    drop.add("accept-encoding") // keep responses scannable for echoes
    if (upgrade) drop.add("sec-websocket-extensions") // no permessage-deflate: compressed frames hide echoes
  }
  const out: Array<string> = []
  const host = rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === "host")
  if (host !== -1) out.push("host", rawHeaders[host + 1]!)
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (!drop.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1]!)
  }
  if (injections.length > 0) out.push("accept-encoding", "identity")
  out.push(...framing)
  if (upgrade) out.push("connection", "upgrade", "upgrade", "websocket")
  for (const { name, value } of injections) out.push(name, value)
  return out
}
