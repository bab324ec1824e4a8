import * as dgram from "node:dgram"
import * as net from "node:net"
import * as tls from "node:tls"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import dnsPacket from "dns-packet"
import { curl } from "./support/Clients.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let world: TestWorld
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

const query = (name: string, type: "A" | "AAAA") =>
  dnsPacket.encode({ type: "query", id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type }] })

const udpAsk = (port: number, packet: Buffer, timeoutMs = 2000): Promise<dnsPacket.DecodedPacket | undefined> =>
  new Promise((resolve) => {
    const socket = dgram.createSocket("udp4")
    const timer = setTimeout(() => {
      socket.close()
      resolve(undefined)
    }, timeoutMs)
    socket.on("message", (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve(dnsPacket.decode(msg))
    })
    socket.send(packet, port, "127.0.0.1")
  })

const tcpAsk = (port: number, packet: Buffer): Promise<dnsPacket.DecodedPacket> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      const frame = Buffer.alloc(2)
      frame.writeUInt16BE(packet.length)
      socket.write(Buffer.concat([frame, packet]))
    })
    let buf = Buffer.alloc(0)
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        socket.end()
        resolve(dnsPacket.decode(buf.subarray(2)))
      }
    })
    socket.on("error", reject)
  })

const rcodeOf = (p: dnsPacket.DecodedPacket) => (p.flags ?? 0) & 0xf
const addresses = (p: dnsPacket.DecodedPacket) => (p.answers ?? []).map((x) => ("data" in x ? String(x.data) : ""))

describe("proxy: DNS", () => {
  it("answers allowlisted names with the proxy address over UDP and TCP, NXDOMAIN otherwise, AAAA empty", async () => {
    const { dnsUdp, dnsTcp } = world.proxy.ports
    const a = (await udpAsk(dnsUdp, query("api.anthropic.com", "A")))!
    assert.strictEqual(a.id, 4242)
    assert.strictEqual(rcodeOf(a), 0)
    assert.deepStrictEqual(addresses(a), ["10.200.0.1"])
    assert.isFalse(a.flag_ra) // no recursion offered
    const wildcard = (await udpAsk(dnsUdp, query("deep.a.wild.test", "A")))!
    assert.deepStrictEqual(addresses(wildcard), ["10.200.0.1"])
    const aaaa = (await udpAsk(dnsUdp, query("api.anthropic.com", "AAAA")))!
    assert.strictEqual(rcodeOf(aaaa), 0)
    assert.strictEqual(aaaa.answers?.length, 0)
    const denied = (await udpAsk(dnsUdp, query("evil.test", "A")))!
    assert.strictEqual(rcodeOf(denied), 3)
    assert.strictEqual(denied.answers?.length, 0)
    const overTcp = await tcpAsk(dnsTcp, query("git.test", "A"))
    assert.deepStrictEqual(addresses(overTcp), ["10.200.0.1"])
    assert.strictEqual(rcodeOf(await tcpAsk(dnsTcp, query("example.com", "A"))), 3)
    // Garbage gets no answer and breaks nothing.
    assert.isUndefined(await udpAsk(dnsUdp, Buffer.from("not a dns packet at all"), 300))
    assert.strictEqual(rcodeOf((await udpAsk(dnsUdp, query("evil.test", "A")))!), 3)
    await world.proxy.waitForAudit((e) => e.decision === "dns_refused" && e.host === "evil.test")
  })
})

describe("proxy: hostile clients", () => {
  it("survives garbage, malformed TLS, half-closed and slowloris connections", async () => {
    const port = world.proxy.ports.https
    const raw = (bytes: Buffer | string, halfClose: boolean) =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.write(bytes)
          if (halfClose) s.end()
        })
        s.on("error", () => resolve())
        s.on("close", () => resolve())
        s.resume()
        setTimeout(() => {
          s.destroy()
          resolve()
        }, 3000)
      })
    const slowloris = new Promise<number>((resolve) => {
      const started = performance.now()
      const s = tls.connect({ port, host: "127.0.0.1", servername: "api.anthropic.com", ca: world.proxy.caPem }, () => {
        s.write("GET / HTTP/1.1\r\nHost: api.anthropic.com\r\n")
        const drip = setInterval(() => s.write("X-Slow: 1\r\n"), 300)
        s.on("close", () => {
          clearInterval(drip)
          resolve(performance.now() - started)
        })
      })
      s.on("error", () => {})
      s.resume()
    })
    await Promise.all([
      raw(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00]), true), // truncated ClientHello
      raw("\x16\x03\x01\x00\x05hello-garbage", false),
      raw("GET / HTTP/1.1\r\n\r\n", true), // plain HTTP on the TLS port
      raw(Buffer.alloc(64 * 1024, 0x41), false),
    ])
    // headersTimeoutMs is 1.5 s in the test config: the dripping client is cut off.
    const slowMs = await slowloris
    assert.isBelow(slowMs, 6000)
    const res = await curl(viaProxy(world, "other.test"))
    assert.strictEqual(res.status, 200)
    assert.strictEqual(world.proxy.child.exitCode, null)
  })

  it("rejects oversized request headers without dying", async () => {
    const res = await curl([...viaProxy(world, "other.test"), "-H", `x-big: ${"a".repeat(40 * 1024)}`])
    assert.strictEqual(res.status, 431)
    assert.strictEqual((await curl(viaProxy(world, "other.test"))).status, 200)
  })
})

describe("proxy: connection limit", () => {
  it("drops connections beyond maxConnections and serves again once they close", async () => {
    const small = await startWorld((c) => ({ ...c, limits: { ...c.limits, maxConnections: 2 } }))
    try {
      const port = small.proxy.ports.https
      const open = await Promise.all([1, 2].map(() =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s))
        })
      ))
      await new Promise((r) => setTimeout(r, 100))
      const third = await curl(viaProxy(small, "other.test")).then(() => "served", () => "dropped")
      assert.strictEqual(third, "dropped")
      for (const s of open) s.destroy()
      await new Promise((r) => setTimeout(r, 100))
      assert.strictEqual((await curl(viaProxy(small, "other.test"))).status, 200)
    } finally {
      await small.close()
    }
  })
})

describe("proxy: upstream addresses", () => {
  it("refuses loopback upstreams unless allowPrivateUpstreams is set", async () => {
    const strict = await startWorld((c) => ({ ...c, upstream: { ...c.upstream, allowPrivateUpstreams: false } }))
    try {
      const res = await curl(viaProxy(strict, "api.anthropic.com"))
      assert.strictEqual(res.status, 502)
      assert.include(res.body, "loopback/private/link-local")
      assert.strictEqual(strict.upstreams.received.length, 0)
      await strict.proxy.waitForAudit((e) => e.decision === "blocked_address" && e.host === "api.anthropic.com")
    } finally {
      await strict.close()
    }
  })
})

describe("proxy: lifecycle", () => {
  it("exits when its stdin closes (the parent stopped or died)", async () => {
    const w = await startWorld()
    const code = await w.proxy.stop()
    assert.strictEqual(code, 0)
    await w.upstreams.close()
  })

  it("exits when stdin closes while it is still starting", async () => {
    const { spawn } = await import("node:child_process")
    const { proxyMain } = await import("./support/ProxyProcess.ts")
    const child = spawn(process.execPath, [proxyMain], { stdio: ["pipe", "ignore", "ignore"], env: {} })
    child.stdin.end(
      JSON.stringify({
        listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
        dnsAnswer: "10.0.0.1",
        allowOut: [],
        credentials: {},
      }) + "\n",
    )
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    assert.strictEqual(code, 0)
  })

  it("exits on SIGTERM and reports a bad config as a fatal error without echoing secrets", async () => {
    const w = await startWorld()
    w.proxy.child.kill("SIGTERM")
    const outcome = await Promise.race([
      w.proxy.exited.then(() => "exited"),
      new Promise((resolve) => setTimeout(() => resolve("still running"), 3000)),
    ])
    assert.strictEqual(outcome, "exited")
    await w.close()

    const { spawn } = await import("node:child_process")
    const { proxyMain } = await import("./support/ProxyProcess.ts")
    const child = spawn(process.execPath, [proxyMain], { stdio: ["pipe", "pipe", "pipe"], env: {} })
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.stdin.write(
      JSON.stringify({
        listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
        dnsAnswer: "10.0.0.1",
        allowOut: ["a.test"],
        credentials: { "a.test": { headers: { "bad name": "paws-canary-badconfig-123456" } } },
      }) + "\n",
    )
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    assert.strictEqual(code, 2)
    assert.include(out, '"_tag":"error"')
    assert.include(out, '"fatal":true')
    assert.notInclude(out, "paws-canary-badconfig-123456")
  })
})
