// Tiny network probe run inside test netns with `ip netns exec NS node probe.ts …`.
//   serve <tcp|udp> <ip> <port> <tag>   answers every connection/datagram with <tag>
//   connect <tcp|udp> <ip> <port>       prints what came back, or BLOCKED after 1.5 s
//   reach tcp <ip> <port>               CONNECTED once the handshake completes (a server that waits
//                                       for the client to speak, like a proxy's TLS port), or BLOCKED
//   udp-flow udp <ip> <port> <peer> <peerport>   from ip:port sends "ping" to the peer (a conntrack flow),
//                                       then prints every datagram received in 3 s, comma-separated
//   udp-keep udp <ip> <port> <peer> <peerport>   like udp-flow, but pings every second until killed
//                                       and prints each datagram received on a line of its own
//   udp-send udp <ip> <port> <peer> <peerport> <text>   sends <text> from ip:port (forged source, tests)
import * as dgram from "node:dgram"
import * as net from "node:net"

const [mode, proto, ip, portText, tag] = process.argv.slice(2)
const port = Number(portText)

if (mode === "serve" && proto === "tcp") {
  net.createServer((s) => s.end(tag ?? "")).listen(port, ip, () => console.log("listening"))
} else if (mode === "serve" && proto === "udp") {
  const sock = dgram.createSocket("udp4")
  sock.on("message", (_m, r) => sock.send(tag ?? "", r.port, r.address))
  sock.bind(port, ip, () => console.log("listening"))
} else if (mode === "reach") {
  setTimeout(() => (console.log("BLOCKED"), process.exit(0)), 1500)
  net.connect(port, ip).on("connect", () => (console.log("CONNECTED"), process.exit(0)))
    .on("error", (e) => (console.log(`ERROR ${e.message}`), process.exit(0)))
} else if (mode === "udp-flow" || mode === "udp-send") {
  const [peer, peerPort, text] = process.argv.slice(6)
  const sock = dgram.createSocket({ type: "udp4", reuseAddr: true }) // forgers may share a source
  const got: Array<string> = []
  sock.on("message", (m) => got.push(m.toString()))
  sock.bind(port, ip, () => {
    sock.send(mode === "udp-flow" ? "ping" : text!, Number(peerPort), peer!, () => {
      if (mode === "udp-send") process.exit(0)
      console.log("flowing")
    })
  })
  if (mode === "udp-flow") setTimeout(() => (console.log(got.join(",")), process.exit(0)), 3000)
} else if (mode === "udp-keep") {
  const [peer, peerPort] = process.argv.slice(6)
  const sock = dgram.createSocket("udp4")
  sock.on("message", (m) => console.log(m.toString("latin1").replace(/[^\x20-\x7e]/g, " ")))
  sock.on("error", () => {}) // ICMP errors from a peer with no listener: keep the flow going
  const ping = () => sock.send("ping", Number(peerPort), peer!)
  sock.bind(port, ip, () => (ping(), setInterval(ping, 1000), console.log("flowing")))
} else if (mode === "connect") {
  const done = (text: string) => {
    console.log(text)
    process.exit(0)
  }
  setTimeout(() => done("BLOCKED"), 1500)
  if (proto === "tcp") {
    const s = net.connect(port, ip)
    let got = ""
    s.on("data", (d) => (got += d))
    s.on("end", () => done(got))
    s.on("error", (e) => done(`ERROR ${e.message}`))
  } else {
    const sock = dgram.createSocket("udp4")
    sock.on("message", (m) => done(m.toString()))
    sock.send("ping", port, ip)
  }
}
