import * as dns from "node:dns"
import type { Agent } from "node:https"
import type { Duplex } from "node:stream"
import { https } from "./NodeHttp.ts"
import type { LookupFunction } from "node:net"
import type { ProxyUpstream } from "@paws/core/ProxyConfig"
import { normalizeHost } from "@paws/core/HostPattern"
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
  /** Keep-alive connections, reused only for sockets never `spoil`ed. */
  readonly agent: Agent
  /** Fresh connections that are never pooled (WebSocket handshakes: an upgraded socket is never reused). */
  readonly oneShotAgent: Agent
  /**
   * Marks a connection as not reusable: its request's framing was not fully consumed (a response
   * came before the body was sent), so the upstream may still be reading bytes of it.
   */
  readonly spoil: (socket: Duplex | null | undefined) => void
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

  const spoiled = new WeakSet<Duplex>()
  const trust = upstream.caBundlePem === undefined ? {} : { ca: upstream.caBundlePem }
  // Node asks keepSocketAlive before pooling a freed socket; false destroys it instead.
  class SpoilAwareAgent extends https.Agent {
    override keepSocketAlive(socket: Duplex): boolean {
      if (spoiled.has(socket)) return false
      return (super.keepSocketAlive as (s: Duplex) => boolean)(socket)
    }
  }
  const agent = new SpoilAwareAgent({
    keepAlive: true,
    keepAliveMsecs: 15_000,
    maxSockets: 128,
    maxFreeSockets: 32,
    scheduling: "lifo",
    timeout: connectTimeoutMs,
    ...trust,
  })
  const oneShotAgent = new https.Agent({ keepAlive: false, maxFreeSockets: 0, timeout: connectTimeoutMs, ...trust })

  return {
    agent,
    oneShotAgent,
    spoil: (socket) => {
      if (socket) spoiled.add(socket)
    },
    lookup,
    portFor: (host) => overrides.get(normalizeHost(host))?.port ?? 443,
    close: () => {
      agent.destroy()
      oneShotAgent.destroy()
    },
  }
}
