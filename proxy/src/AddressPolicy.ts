import { BlockList, isIP } from "node:net"

/**
 * Upstream addresses the guest must never reach through its proxy: this host, private networks,
 * link-local (cloud metadata at 169.254.169.254 / fd00:ec2::254), CGNAT, multicast, reserved.
 */
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
    ["::", 127], // :: and ::1
    ["64:ff9b::", 96], // NAT64 can reach private IPv4
    ["100::", 64],
    ["2001:db8::", 32],
    ["fc00::", 7], // unique local, includes fd00:ec2::254
    ["fe80::", 10],
    ["ff00::", 8],
  ] as const
) forbidden.addSubnet(net, prefix, "ipv6")

const mappedV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/** Whether `address` (a literal IP) is one the proxy refuses to connect to unless explicitly allowed. */
export const isForbiddenAddress = (address: string): boolean => {
  const mapped = mappedV4.exec(address)
  if (mapped) return forbidden.check(mapped[1]!, "ipv4")
  const family = isIP(address)
  if (family === 0) return true
  return forbidden.check(address, family === 4 ? "ipv4" : "ipv6")
}
