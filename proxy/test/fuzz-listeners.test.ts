import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import dnsPacket from "dns-packet"
import fc from "fast-check"
import { curl } from "./support/Clients.ts"
import { captureClientHello, poke, pokeTls, rssKiB, udpAnswer, udpSend } from "./support/FuzzSockets.ts"
import { startWorld, upstreamNames, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

/**
 * One real proxy process takes fuzzed bytes on every listener; it must never exit, stay within
 * a memory bound, and still inject credentials over TLS afterwards.
 */
let world: TestWorld
let hello: Buffer
let baselineKiB = 0
const runs: Record<string, number> = {}
const count = (name: string) => (runs[name] = (runs[name] ?? 0) + 1)

beforeAll(async () => {
  world = await startWorld()
  hello = await captureClientHello("api.anthropic.com")
  assert.strictEqual((await curl(viaProxy(world, "api.anthropic.com"))).status, 200) // warm: CA leaf, upstream pool
  baselineKiB = rssKiB(world.proxy.child.pid!)
}, 60_000)
afterAll(async () => {
  const total = Object.values(runs).reduce((a, b) => a + b, 0)
  console.log(`fuzz-listeners: ${JSON.stringify(runs)} total=${total}`)
  await world?.close()
})

/** The proxy is alive and reported no internal error (its uncaughtException safety net). */
const assertAlive = () => {
  assert.strictEqual(world.proxy.child.exitCode, null, "the proxy exited")
  const internal = world.proxy.messages.filter((m) => m._tag === "error")
  assert.deepStrictEqual(internal, [], "the proxy reported errors")
}

const query = (id: number, name: string) =>
  dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: "A" }] })

describe("fuzz: proxy listeners (one real proxy process)", () => {
  it("HTTPS port: garbage bytes and cut or mutated ClientHellos", async () => {
    const { https } = world.proxy.ports
    const mutatedHello = fc.record({
      cut: fc.nat(),
      flips: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }),
      tail: fc.uint8Array({ maxLength: 64 }),
      repeat: fc.integer({ min: 1, max: 3 }),
    }).map(({ cut, flips, tail, repeat }) => {
      const bytes = Buffer.from(hello)
      for (const f of flips) bytes[f.at % bytes.length] = f.byte
      const cutAt = cut % (bytes.length + 1)
      return Buffer.concat([...Array.from({ length: repeat }, () => bytes.subarray(0, cutAt)), tail])
    })
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }).map((b) => ({ kind: "garbage", bytes: b })),
      mutatedHello.map((b) => ({ kind: "hello", bytes: b })),
      // A TLS record header that announces far more than arrives.
      fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 100 }))
        .map(([len, body]) => ({
          kind: "record",
          bytes: Buffer.concat([Buffer.from([0x16, 0x03, 0x01, len >> 8, len & 0xff]), body]),
        })),
    )
    await fc.assert(
      fc.asyncProperty(input, async ({ kind, bytes }) => {
        count(`https-${kind}`)
        await poke(https, bytes, { waitMs: 1_000 })
      }),
      { numRuns: 700 },
    )
    assertAlive()
  }, 120_000)

  it("HTTPS port: random requests inside a real TLS session never get a 500", async () => {
    const { https } = world.proxy.ports
    // Only names the test world resolves to its loopback upstream: nothing may leave the machine.
    const names = upstreamNames.filter((n) => n !== "git.test")
    let answered = 0
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/)
    const request = fc.oneof(
      fc.tuple(
        fc.oneof(fc.constantFrom("GET", "POST", "CONNECT", "OPTIONS", "TRACE"), token),
        fc.oneof(
          fc.constantFrom(
            "/",
            "*",
            "http://evil.test/",
            "api.anthropic.com:443",
            "//x",
            "/%00",
            "/" + "a".repeat(9000),
          ),
          fc.string({ unit: "binary", maxLength: 60 }),
        ),
        fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", ""),
        fc.option(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 30 })), { nil: undefined }),
        fc.array(
          fc.tuple(
            fc.oneof(token, fc.constantFrom("x-api-key", "authorization", "content-length", "transfer-encoding")),
            fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.constantFrom("chunked", "-1", "99999999999")),
          ),
          { maxLength: 4 },
        ),
        fc.uint8Array({ maxLength: 200 }),
      ).map(([method, target, version, host, headers, body]) =>
        Buffer.concat([
          Buffer.from(
            `${method} ${target} ${version}\r\n` + (host === undefined ? "" : `Host: ${host}\r\n`) +
              headers.map(([n, v]) => `${n}: ${v}\r\n`).join("") + "\r\n",
          ),
          body,
        ])
      ),
      fc.uint8Array({ maxLength: 1024 }),
    )
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), request, async (servername, bytes) => {
        count("httpsInside")
        const { reply } = await pokeTls(https, servername, world.proxy.caPem, bytes)
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(reply.toString("latin1"))?.[1]
        assert.notStrictEqual(status, "500", `${servername}: ${bytes.toString("latin1").slice(0, 120)}`)
        if (status !== undefined) answered++
      }),
      { numRuns: 300 },
    )
    assert.isAbove(answered, 100, "most requests should reach the proxy's HTTP handling and get an answer")
    assertAlive()
  }, 120_000)

  it("HTTP port 80: random request lines and huge header blocks get a 4xx/3xx or a close, never a 5xx", async () => {
    const { http } = world.proxy.ports
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/)
    const request = fc.oneof(
      fc.tuple(
        fc.oneof(fc.constantFrom("GET", "POST", "CONNECT", "OPTIONS", "PRI"), token),
        fc.oneof(
          fc.constantFrom(
            "/",
            "*",
            "http://evil.test/",
            "api.anthropic.com:443",
            "//x",
            "/%00",
            "/" + "a".repeat(9000),
          ),
          fc.string({ unit: "binary", maxLength: 60 }),
        ),
        fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", ""),
        fc.option(fc.oneof(fc.constantFrom(...upstreamNames), fc.string({ maxLength: 30 })), { nil: undefined }),
        fc.array(fc.tuple(token, fc.string({ unit: "binary", maxLength: 40 })), { maxLength: 4 }),
      ).map(([method, target, version, host, headers]) =>
        Buffer.from(
          `${method} ${target} ${version}\r\n` + (host === undefined ? "" : `Host: ${host}\r\n`) +
            headers.map(([n, v]) => `${n}: ${v}\r\n`).join("") + "\r\n",
        )
      ),
      fc.integer({ min: 1, max: 200 }).map((kb) =>
        Buffer.from(`GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nX-Big: ${"b".repeat(kb * 1024)}\r\n\r\n`)
      ),
      fc.uint8Array({ maxLength: 1024 }),
    )
    await fc.assert(
      fc.asyncProperty(request, async (bytes) => {
        count("http")
        const { reply } = await poke(http, bytes, { waitMs: 2_000 })
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(reply.toString("latin1"))?.[1]
        if (status !== undefined) assert.isBelow(Number(status), 500, `${bytes.toString("latin1").slice(0, 120)}`)
      }),
      { numRuns: 500 },
    )
    assertAlive()
  }, 120_000)

  it("DNS over UDP and TCP: garbage and mutated queries, valid queries still answered", async () => {
    const { dnsUdp, dnsTcp } = world.proxy.ports
    const packet = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.tuple(
        fc.constantFrom(...upstreamNames, "example.com", "a".repeat(63) + ".test"),
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
      ).map(([name, flips, cut]) => {
        const bytes = Buffer.from(query(7, name))
        for (const f of flips) bytes[f.at % bytes.length] = f.byte
        return bytes.subarray(0, Math.max(2, cut % (bytes.length + 1)))
      }),
    )
    let id = 1000
    await fc.assert(
      fc.asyncProperty(packet, async (bytes) => {
        count("dnsUdp")
        await udpSend(dnsUdp, bytes)
        const probeId = (++id % 60000) + 1
        const answer = await udpAnswer(dnsUdp, query(probeId, "api.anthropic.com"), probeId)
        assert.isDefined(answer, "a valid query after garbage went unanswered")
      }),
      { numRuns: 500 },
    )
    const framed = fc.oneof(
      packet.map((p) => Buffer.concat([Buffer.from([p.length >> 8, p.length & 0xff]), p])),
      fc.tuple(fc.integer({ min: 0, max: 0xffff }), packet).map(([len, p]) =>
        Buffer.concat([Buffer.from([len >> 8, len & 0xff]), p])
      ),
      fc.uint8Array({ maxLength: 300 }),
    )
    await fc.assert(
      fc.asyncProperty(framed, async (bytes) => {
        count("dnsTcp")
        await poke(dnsTcp, bytes, { waitMs: 1_000 })
      }),
      { numRuns: 300 },
    )
    assertAlive()
    const answer = await udpAnswer(dnsUdp, query(4242, "api.anthropic.com"), 4242)
    assert.deepStrictEqual(dnsPacket.decode(answer!).answers?.map((a) => ("data" in a ? String(a.data) : "")), [
      "10.200.0.1",
    ])
  }, 120_000)

  it("slow clients holding partial ClientHellos and headers are cut off", async () => {
    const { https, http } = world.proxy.ports
    const slow = fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 60 }))
    const started = Date.now()
    await fc.assert(
      fc.asyncProperty(fc.array(slow, { minLength: 10, maxLength: 10 }), async (clients) => {
        count("slowBatches")
        const outcomes = await Promise.all(clients.map(([tlsPort, cut]) =>
          poke(
            tlsPort ? https : http,
            tlsPort ? hello.subarray(0, cut) : Buffer.from("GET / HTTP/1.1\r\nHost: api.anth".slice(0, cut)),
            { hold: true, waitMs: 8_000 },
          )
        ))
        // headersTimeoutMs is 1.5 s in the test world: every one is closed by the proxy, not by us.
        for (const o of outcomes) assert.isTrue(o.closedByServer, "a slow client was never cut off")
      }),
      { numRuns: 3 },
    )
    assert.isBelow(Date.now() - started, 25_000)
    assertAlive()
  }, 60_000)

  it("afterwards: alive, memory bounded, and a real TLS request still gets its credential injected", async () => {
    assertAlive()
    const rss = rssKiB(world.proxy.child.pid!)
    console.log(`proxy RSS: ${Math.round(baselineKiB / 1024)} MiB before fuzzing, ${Math.round(rss / 1024)} MiB after`)
    assert.isBelow(rss, baselineKiB + 150 * 1024, "proxy memory grew by more than 150 MiB")
    const res = await curl([...viaProxy(world, "api.anthropic.com", "/v1/after-fuzz"), "-H", "x-api-key: forged"])
    assert.strictEqual(res.status, 200)
    const got = world.upstreams.received.filter((r) => r.url === "/v1/after-fuzz").at(-1)!
    assert.strictEqual(got.headers["x-api-key"], world.secrets.anthropic)
  }, 30_000)
})
