import type * as tlsTypes from "node:tls"
import { tls } from "./NodeHttp.ts"
import type { CertificateAuthority } from "./CertificateAuthority.ts"

const dnsName = /^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * TLS contexts per server name, issued on first use (SAN = exactly that name) and kept, bounded.
 * Names off the allowlist get a certificate too: the guest then reads a plain refusal over HTTP
 * instead of a certificate error it would try to work around.
 */
export interface LeafCertificateCache {
  readonly contextFor: (servername: string) => Promise<tlsTypes.SecureContext>
  readonly sniCallback: (servername: string, cb: (err: Error | null, ctx?: tlsTypes.SecureContext) => void) => void
}

export const makeLeafCertificateCache = (ca: CertificateAuthority, maxEntries = 2048): LeafCertificateCache => {
  const cache = new Map<string, Promise<tlsTypes.SecureContext>>()
  const contextFor = (servername: string): Promise<tlsTypes.SecureContext> => {
    const name = servername.toLowerCase().replace(/\.$/, "")
    const hit = cache.get(name)
    if (hit) return hit
    if (!dnsName.test(name)) return Promise.reject(new Error("server name is not a DNS name"))
    const made = ca.issueLeaf(name).then((cert) =>
      tls.createSecureContext({ key: ca.leafKeyPem, cert, ca: ca.certificatePem })
    )
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!)
    cache.set(name, made)
    made.catch(() => cache.delete(name))
    return made
  }
  return {
    contextFor,
    sniCallback: (servername, cb) => {
      contextFor(servername).then((ctx) => cb(null, ctx), (err: Error) => cb(err))
    },
  }
}
