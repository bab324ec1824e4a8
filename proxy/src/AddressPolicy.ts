import { BlockList, isIP } from "node:net"
import { networkInterfaces } from "node:os"

/**
 * Upstream addresses the guest must never reach through its proxy: this host, private networks,
 * link-local (cloud metadata at 169.254.169.254 / fd00:ec2::254), CGNAT, multicast, reserved,
 * NAT64 prefixes and IPv4-compatible IPv6 (both can carry a private IPv4 address), and every
 * address of the node itself (its public ones too: a service bound there is not the internet).
 */
const forbiddenList = (): BlockList => {
  const forbidden = new BlockList()
  for (
    const [net, prefix] of [
      ["0.0.0.0", 8],
      ["10.0.0.0", 8],
      ["100.64.0.0", 10],
      ["127.0.0.0", 8],
      ["169.254.0.0", 16],
      ["172.16.0.0", 12],
      ["192.0.0.0", 24],
      ["192.0.2.0", 24],
      ["192.168.0.0", 16],
      ["198.18.0.0", 15],
      ["198.51.100.0", 24],
      ["203.0.113.0", 24],
      ["224.0.0.0", 4],
      ["240.0.0.0", 4],
    ] as const
  ) forbidden.addSubnet(net, prefix, "ipv4")
  for (
    const [net, prefix] of [
      ["::", 96], // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
      ["64:ff9b::", 96], // NAT64 can reach private IPv4
      ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215), likewise
      ["100::", 64],
      ["2001:db8::", 32],
      ["fc00::", 7], // unique local, includes fd00:ec2::254
      ["fe80::", 10],
      ["ff00::", 8],
    ] as const
  ) forbidden.addSubnet(net, prefix, "ipv6")
  return forbidden
}
// Built at first use, not at import: importing the proxy's modules does nothing.
let forbidden: BlockList | undefined

const mappedV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/**
 * The node's own addresses: every interface of the network namespace the proxy runs in (the
 * node's). Read at each check rather than once at start: a pooled proxy may wait a long time, and
 * addresses come and go (DHCP, new TAPs); getifaddrs costs microseconds next to a TLS connect.
 */
export const ownAddresses = (): ReadonlyArray<string> =>
  Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))

const familyOf = (address: string) => (isIP(address) === 4 ? "ipv4" : "ipv6")

/** Whether `address` (a literal IP) is one the proxy refuses to connect to unless explicitly allowed. */
export const isForbiddenAddress = (address: string, own: ReadonlyArray<string> = ownAddresses()): boolean => {
  const plain = mappedV4.exec(address)?.[1] ?? address
  if (isIP(plain) === 0) return true
  if ((forbidden ??= forbiddenList()).check(plain, familyOf(plain))) return true
  const mine = new BlockList()
  for (const a of own) if (isIP(a) !== 0) mine.addAddress(a, familyOf(a))
  return mine.check(plain, familyOf(plain))
}
