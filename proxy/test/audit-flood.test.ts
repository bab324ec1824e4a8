import * as dgram from "node:dgram"
import * as net from "node:net"
import { randomBytes } from "node:crypto"
import { afterEach, assert, describe, it } from "@effect/vitest"
import dnsPacket from "dns-packet"
import { Agent, fetch } from "undici"
import type { ProxyAuditEvent } from "../../core/src/ProxyAudit.ts"
import { defaultAuditThrottle } from "../src/AuditLog.ts"
import { loopbackLookup } from "./support/Clients.ts"
import { startWorld } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let world: TestWorld | undefined
afterEach(async () => {
  await world?.close()
  world = undefined
})

const query = (id: number, name: string) =>
  dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: "A" }] })

/**
 * Sends every query pipelined on one DNS-over-TCP connection and waits for every answer: unlike
 * UDP nothing is lost on the way, so the proxy saw exactly `names.length` queries.
 */
const tcpFlood = (port: number, names: ReadonlyArray<string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(Buffer.concat(names.map((name, i) => {
        const packet = query(i % 65536, name)
        const frame = Buffer.alloc(2 + packet.length)
        frame.writeUInt16BE(packet.length)
        packet.copy(frame, 2)
        return frame
      })))
    })
    let buffered = Buffer.alloc(0)
    let answers = 0
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0))
        if (++answers === names.length) {
          socket.end()
          resolve(answers)
        }
      }
    })
    socket.on("error", reject)
  })

const udpAnswer = (port: number, name: string): Promise<dnsPacket.DecodedPacket> =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4")
    const timer = setTimeout(() => (socket.close(), reject(new Error("no DNS answer"))), 2000)
    socket.on("message", (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve(dnsPacket.decode(msg))
    })
    socket.send(query(7, name), port, "127.0.0.1")
  })

const countOf = (e: ProxyAuditEvent) => e.count ?? 1
const sum = (events: ReadonlyArray<ProxyAuditEvent>) => events.reduce((n, e) => n + countOf(e), 0)
const suppressedOf = (events: ReadonlyArray<ProxyAuditEvent>, decision: string) =>
  events.filter((e) => e.decision === "audit_suppressed").reduce((n, e) => {
    const m = new RegExp(`${decision} (\\d+)`).exec(e.reason ?? "")
    return n + (m === null ? 0 : Number(m[1]))
  }, 0)

/**
 * What the throttle may emit in `seconds`, per bucket: the burst plus the refill, each emitted
 * event at most once more as an aggregate of its repeats, and one summary per window.
 */
const bound = (seconds: number) => {
  const { burst, perSecond, windowMs } = defaultAuditThrottle
  return 2 * (burst + perSecond * seconds) + Math.ceil((seconds * 1000) / windowMs) + 1
}

describe("proxy: audit events under a flood", () => {
  it("a DNS flood (repeats and thousands of random names) emits a bounded number of events that account for every query", async () => {
    const w = (world = await startWorld())
    const started = performance.now()
    const repeatsAnswered = Array.from({ length: 1000 }, () => "api.anthropic.com")
    const repeatsRefused = Array.from({ length: 2000 }, () => "evil.test")
    const random = Array.from({ length: 5000 }, (_, i) => `q${i}-${randomBytes(6).toString("hex")}.flood.test`)
    assert.strictEqual(await tcpFlood(w.proxy.ports.dnsTcp, [...repeatsAnswered, ...repeatsRefused]), 3000)
    assert.strictEqual(await tcpFlood(w.proxy.ports.dnsTcp, random), 5000)
    // The proxy still answers while (and after) it throttles its audit.
    assert.deepStrictEqual((await udpAnswer(w.proxy.ports.dnsUdp, "api.anthropic.com")).answers?.length, 1)
    // Aggregates arrive while the proxy runs (each window), not only when it stops.
    await w.proxy.waitForAudit((e) => e.host === "evil.test" && (e.count ?? 1) > 1, 10_000)
    const seconds = (performance.now() - started) / 1000
    await w.proxy.stop() // flushes what the throttle still holds

    const audits = w.proxy.audits
    assert.isAtMost(audits.length, bound(seconds), `emitted ${audits.length} events for 8001 queries`)
    assert.isBelow(audits.length, 8001 / 4)
    // Identical queries became one event with a count (plus at most one per window boundary).
    const answered = audits.filter((e) => e.decision === "dns_answered" && e.host === "api.anthropic.com")
    // The last (UDP) one may have found the window flushed and the bucket empty.
    assert.strictEqual(sum(answered) + suppressedOf(audits, "dns_answered"), 1001)
    assert.isAtMost(answered.length, 4)
    assert.isTrue(answered.some((e) => (e.count ?? 1) > 900), JSON.stringify(answered))
    const refused = audits.filter((e) => e.decision === "dns_refused" && e.host === "evil.test")
    assert.strictEqual(sum(refused), 2000)
    assert.isAtMost(refused.length, 4)
    // Random names: some one by one, the rest counted in "suppressed" summaries; none lost.
    const flood = audits.filter((e) => e.host.endsWith(".flood.test"))
    assert.isTrue(flood.every((e) => e.decision === "dns_refused" && e.count === undefined))
    assert.isAtLeast(flood.length, defaultAuditThrottle.burst)
    assert.isBelow(flood.length, 5000)
    assert.strictEqual(flood.length + suppressedOf(audits, "dns_refused"), 5000)
    const summaries = audits.filter((e) => e.decision === "audit_suppressed")
    assert.isAtLeast(summaries.length, 1)
    assert.strictEqual(sum(summaries), 5000 - flood.length)
    assert.isTrue(summaries.every((e) => e.host === "*"))
  })

  it("an HTTPS request flood aggregates identical requests and rate-limits distinct ones, accounting for each", async () => {
    const w = (world = await startWorld())
    const dispatcher = new Agent({ connect: { ca: w.proxy.caPem, lookup: loopbackLookup }, connections: 16 })
    const base = `https://other.test:${w.proxy.ports.https}`
    const all = async (paths: ReadonlyArray<string>) => {
      let next = 0
      const worker = async () => {
        while (next < paths.length) {
          const res = await fetch(base + paths[next++]!, { dispatcher })
          await res.arrayBuffer()
          assert.strictEqual(res.status, 200)
        }
      }
      await Promise.all(Array.from({ length: 16 }, worker))
    }
    const started = performance.now()
    await all(Array.from({ length: 800 }, () => "/same?token=x"))
    await all(Array.from({ length: 2000 }, (_, i) => `/flood/${i}`))
    const seconds = (performance.now() - started) / 1000
    await dispatcher.close()
    await w.proxy.stop()

    const audits = w.proxy.audits
    assert.isAtMost(audits.length, bound(seconds), `emitted ${audits.length} events for 2800 requests`)
    const same = audits.filter((e) => e.path === "/same?token")
    assert.strictEqual(sum(same), 800)
    assert.isAtMost(same.length, 2 * Math.ceil((seconds * 1000) / defaultAuditThrottle.windowMs) + 2)
    const agg = same.find((e) => (e.count ?? 1) > 1)!
    assert.strictEqual(agg.decision, "allowed")
    assert.strictEqual(agg.status, 200)
    assert.isAbove(agg.bytesOut ?? 0, 0) // totals over the aggregated requests
    const flood = audits.filter((e) => (e.path ?? "").startsWith("/flood/"))
    assert.isBelow(flood.length, 2000)
    assert.strictEqual(flood.length + suppressedOf(audits, "allowed"), 2000)
  })
})
