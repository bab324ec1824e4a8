// Tiny network probe run inside test netns with `ip netns exec NS node probe.ts …`.
//   serve <tcp|udp> <ip> <port> <tag>   answers every connection/datagram with <tag>
//   connect <tcp|udp> <ip> <port>       prints what came back, or BLOCKED after 1.5 s
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
