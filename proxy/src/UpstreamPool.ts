import * as dns from "node:dns"
import type { Agent } from "node:https"
import { https } from "./NodeHttp.ts"
import type { LookupFunction } from "node:net"
import type { ProxyUpstream } from "../../core/src/ProxyConfig.ts"
import { normalizeHost } from "../../core/src/HostPattern.ts"
import { isForbiddenAddress } from "./AddressPolicy.ts"

/** The upstream resolved only to addresses the guest may not reach. */
export class BlockedAddress extends Error {
  readonly code = "EPAWSBLOCKED"
  constructor(host: string, addresses: ReadonlyArray<string>) {
    super(
      `${host} resolves to ${addresses.join(", ")}, a loopback/private/link-local address the sandbox may not reach`,
    )
    this.name = "BlockedAddress"
  }
}

/**
 * Keep-alive TLS connections to upstreams, verified against the system trust store or the
 * configured bundle. Names are resolved by the proxy itself (or the test override map) and the
 * checked address is the one connected to, so DNS rebinding cannot slip a private address in.
 */
export interface UpstreamPool {
  readonly agent: Agent
  readonly lookup: LookupFunction
  readonly portFor: (host: string) => number
  readonly close: () => void
}

export const makeUpstreamPool = (
  upstream: ProxyUpstream,
  connectTimeoutMs: number,
): UpstreamPool => {
  const overrides = new Map(Object.entries(upstream.resolve ?? {}).map(([h, t]) => [normalizeHost(h), t]))
  const allowPrivate = upstream.allowPrivateUpstreams === true

  const lookup: LookupFunction = (hostname, options, callback) => {
    const reply = (addresses: ReadonlyArray<dns.LookupAddress>) => {
      const usable = allowPrivate ? addresses : addresses.filter((a) => !isForbiddenAddress(a.address))
      if (usable.length === 0) {
        return callback(new BlockedAddress(hostname, addresses.map((a) => a.address)), "", 4)
      }
      if (options.all) return callback(null, usable as Array<dns.LookupAddress>)
      callback(null, usable[0]!.address, usable[0]!.family)
    }
    const override = overrides.get(normalizeHost(hostname))
    if (override) return reply([{ address: override.address, family: override.address.includes(":") ? 6 : 4 }])
    dns.lookup(hostname, { all: true, ...(options.family ? { family: options.family } : {}) }, (err, addresses) => {
      if (err) return callback(err, "", 4)
      reply(addresses)
    })
  }

  const agent = new https.Agent({
    keepAlive: true,
    keepAliveMsecs: 15_000,
    maxSockets: 128,
    maxFreeSockets: 32,
    scheduling: "lifo",
    timeout: connectTimeoutMs,
    ...(upstream.caBundlePem === undefined ? {} : { ca: upstream.caBundlePem }),
  })

  return {
    agent,
    lookup,
    portFor: (host) => overrides.get(normalizeHost(host))?.port ?? 443,
    close: () => agent.destroy(),
  }
}
