// Host-side bait for the escape suite, run INSIDE the node's netns:
//   ip netns exec NS node EscapeListenerChild.ts      stdin: one JSON line, an array of ListenerSpec
// stdout: {"ready": true} once every listener is bound, then one {"hit": Hit} line per TCP
// connection or UDP datagram. TCP listeners answer with their tag and close; UDP ones echo the tag.
// Every hit is something that reached a host service; the suite asserts there are none from a guest.
import * as dgram from "node:dgram"
import * as net from "node:net"
import { createInterface } from "node:readline"

interface ListenerSpec {
  readonly proto: "tcp" | "udp"
  readonly ip: string
  readonly port: number
  readonly tag: string
}

const line = await new Promise<string>((resolve) => createInterface({ input: process.stdin }).once("line", resolve))
const specs = JSON.parse(line) as ReadonlyArray<ListenerSpec>
const hit = (spec: ListenerSpec, from: string) =>
  process.stdout.write(JSON.stringify({ hit: { tag: spec.tag, proto: spec.proto, from } }) + "\n")

await Promise.all(specs.map((spec) =>
  new Promise<void>((resolve, reject) => {
    const v6 = net.isIPv6(spec.ip)
    if (spec.proto === "tcp") {
      const server = net.createServer((s) => {
        hit(spec, `${s.remoteAddress}:${s.remotePort}`)
        s.on("error", () => {})
        s.end(`${spec.tag}\n`)
      })
      server.once("error", reject)
      server.listen({ host: spec.ip, port: spec.port, ipv6Only: v6 }, () => resolve())
    } else {
      const sock = dgram.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6 })
      sock.on("message", (_m, r) => {
        hit(spec, `${r.address}:${r.port}`)
        sock.send(`${spec.tag}\n`, r.port, r.address)
      })
      sock.once("error", reject)
      sock.bind(spec.port, spec.ip, () => resolve())
    }
  })
))
process.stdout.write(JSON.stringify({ ready: true }) + "\n")
process.stdin.on("end", () => process.exit(0))
