import * as tls from "node:tls"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { startRawUpstream } from "./support/RawUpstream.ts"
import type { RawUpstream } from "./support/RawUpstream.ts"
import { startWorld } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

// The guest, as root, writes whatever bytes it likes into its TLS connection to the proxy. Each
// test sends one smuggling shape and asserts on exactly what reached a raw upstream.
let world: TestWorld
let raw: RawUpstream
const secret = `paws-canary-raw-${Math.random().toString(36).slice(2)}-0123456789`

beforeAll(async () => {
  raw = await startRawUpstream()
  world = await startWorld((c) => ({
    ...c,
    allowOut: [...c.allowOut, "raw.test"],
    credentials: { ...c.credentials, "raw.test": { headers: { authorization: `Bearer ${secret}` } } },
    upstream: {
      ...c.upstream,
      caBundlePem: `${c.upstream!.caBundlePem}\n${raw.caPem}`,
      resolve: { ...c.upstream!.resolve, "raw.test": { address: "127.0.0.1", port: raw.port } },
    },
  }))
})
afterAll(async () => {
  await world?.close()
  await raw?.close()
})

/** Writes `bytes` on one TLS connection to the proxy and returns everything it answers until it closes (or goes quiet). */
const exchange = (bytes: string, quietMs = 1500, servername = "raw.test"): Promise<string> =>
  new Promise((resolve) => {
    let out = ""
    let timer: NodeJS.Timeout | undefined
    const s = tls.connect(
      { port: world.proxy.ports.https, host: "127.0.0.1", servername, ca: world.proxy.caPem },
      () => {
        s.write(bytes)
      },
    )
    const done = () => {
      clearTimeout(timer)
      s.destroy()
      resolve(out)
    }
    const quiet = () => {
      clearTimeout(timer)
      timer = setTimeout(done, quietMs)
    }
    quiet()
    s.on("data", (c: Buffer) => {
      out += c.toString("latin1")
      quiet()
    })
    s.on("error", done)
    s.on("close", done)
  })

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]))

/** A request hidden in a body; each test's own tag shows whether its bytes ever reached the upstream. */
const smuggledAs = (tag: string) => `POST /reflect-${tag} HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 400\r\n\r\n`
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`
const victim = "GET /victim HTTP/1.1\r\nHost: raw.test\r\n\r\n"

/** Nothing a refused shape carried reached the upstream, and no request swallowed the credential. */
const assertNothingSmuggled = (tag: string, since: number) => {
  assert.notInclude(raw.allBytes(), `/reflect-${tag}`)
  for (const r of raw.requests.slice(since)) {
    assert.notInclude(r.body, secret, `request ${r.method} ${r.path} carried the credential in its body`)
    assert.notInclude(r.body, "HTTP/1.1", `request ${r.method} ${r.path} carried a request in its body`)
  }
}

describe("proxy: request smuggling toward the upstream", () => {
  it("refuses a GET (or HEAD) with a chunked or sized body with 400, and forwards none of it", async () => {
    const since = raw.requests.length
    const smuggled = smuggledAs("get")
    const shapes = [
      `GET / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: raw.test\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      `HEAD / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n`,
    ]
    for (const shape of shapes) {
      const answer = await exchange(shape + victim)
      assert.strictEqual(statuses(answer)[0], 400, answer)
      assert.include(answer, "x-paws-decision: malformed_request")
      assert.notInclude(answer, secret)
    }
    assert.include(await exchange(shapes[0]!), "a GET request may not carry a body")
    assertNothingSmuggled("get", since)
    await world.proxy.waitForAudit((e) => e.decision === "malformed_request" && e.host === "raw.test")
  })

  it("refuses CL.TE, TE.CL and obfuscated TE.TE shapes with a readable 400", async () => {
    const since = raw.requests.length
    const smuggled = smuggledAs("tecl")
    const shapes = [
      `POST / HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n${
        chunk(smuggled)
      }0\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n${
        chunk(smuggled)
      }0\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n${
        chunk(smuggled)
      }0\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: xchunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n`,
      `POST / HTTP/1.0\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello${smuggled}`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nX-Fold: a\r\n b\r\nContent-Length: 5\r\n\r\nhello${smuggled}`,
      `POST / HTTP/1.1\r\nHost: raw.test\r\nX-Cr: a\rb\r\nContent-Length: 5\r\n\r\nhello${smuggled}`,
    ]
    for (const shape of shapes) {
      const answer = await exchange(shape + victim)
      assert.strictEqual(statuses(answer)[0], 400, `${JSON.stringify(shape.slice(0, 90))} → ${answer}`)
      assert.include(answer, "paws proxy:")
    }
    assertNothingSmuggled("tecl", since)
  })

  it("re-frames bodies itself: DELETE/POST bodies reach the upstream as data inside one request", async () => {
    const before = raw.requests.length
    const smuggled = smuggledAs("data")
    const answer = await exchange(
      `DELETE /d HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n` +
        `POST /p HTTP/1.1\r\nHost: raw.test\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}` + victim,
    )
    assert.deepStrictEqual(statuses(answer), [200, 200, 200])
    // Pipelined guest requests are forwarded as they are parsed, so they may reach the upstream in any order.
    const mine = raw.requests.slice(before)
    assert.deepStrictEqual(mine.map((r) => `${r.method} ${r.path}`).sort(), ["DELETE /d", "GET /victim", "POST /p"])
    const [del, post, got] = ["/d", "/p", "/victim"].map((p) => mine.find((r) => r.path === p))
    assert.strictEqual(del!.body, smuggled)
    assert.match(del!.head, /\r\ntransfer-encoding: chunked/i)
    assert.strictEqual(post!.body, smuggled)
    assert.match(post!.head, new RegExp(`\\r\\ncontent-length: ${smuggled.length}`, "i"))
    assert.include(got!.head, `Bearer ${secret}`) // injected where it belongs, and nowhere else
    assert.notInclude(del!.body + post!.body, secret)
  })

  it("never reuses a connection whose request body was still being sent when the response came", async () => {
    const before = raw.requests.length
    const smuggled = smuggledAs("early")
    // /early answers on its head alone and then parses the body as a new request, which would
    // swallow the next request on that connection (the victim, carrying the credential).
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({
        port: world.proxy.ports.https,
        host: "127.0.0.1",
        servername: "raw.test",
        ca: world.proxy.caPem,
      })
      let out = ""
      s.on(
        "secureConnect",
        () => s.write(`POST /early HTTP/1.1\r\nHost: raw.test\r\nContent-Length: ${smuggled.length}\r\n\r\nP`),
      )
      s.on("data", (c: Buffer) => {
        out += c.toString("latin1")
        if (out.endsWith("early")) s.end(smuggled.slice(1)) // the rest of the body, after the response
      })
      s.on("error", reject)
      s.on("close", () => resolve(out))
    })
    assert.strictEqual(statuses(answer)[0], 200)
    await new Promise((r) => setTimeout(r, 200))
    const followUp = await exchange(victim)
    assert.strictEqual(statuses(followUp)[0], 200, followUp)
    const mine = raw.requests.slice(before)
    const early = mine.find((r) => r.path === "/early")!
    const victimSeen = mine.find((r) => r.path === "/victim")
    assert.isDefined(victimSeen, "the victim request arrived as a request of its own")
    assert.notStrictEqual(victimSeen!.connection, early.connection)
    for (const r of raw.requests) assert.notInclude(r.body, secret)
  })

  it("refuses a WebSocket handshake with a body, and never pools a declined upgrade's connection", async () => {
    const handshake = "GET /ws HTTP/1.1\r\nHost: raw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    const since = raw.requests.length
    const smuggled = smuggledAs("ws")
    const withBody = await exchange(`${handshake}Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`)
    assert.strictEqual(statuses(withBody)[0], 400)
    assertNothingSmuggled("ws", since)

    const before = raw.requests.length
    const declined = await exchange(`${handshake}\r\n`)
    assert.strictEqual(statuses(declined)[0], 403)
    assert.strictEqual(statuses(await exchange(victim))[0], 200)
    const [ws, after] = raw.requests.slice(before)
    assert.strictEqual(ws!.path, "/ws")
    assert.notMatch(ws!.head, /content-length|transfer-encoding/i)
    assert.strictEqual(after!.path, "/victim")
    assert.notStrictEqual(after!.connection, ws!.connection)
  })

  it("answers TRACE, TRACK and CONNECT with 405", async () => {
    for (const method of ["TRACE", "TRACK"]) {
      const answer = await exchange(`${method} / HTTP/1.1\r\nHost: raw.test\r\n\r\n`)
      assert.strictEqual(statuses(answer)[0], 405, answer)
    }
    const connect = await exchange("CONNECT raw.test:443 HTTP/1.1\r\nHost: raw.test:443\r\n\r\n")
    assert.strictEqual(statuses(connect)[0], 405, connect)
    assert.notInclude(raw.allBytes(), "TRACE")
    assert.notInclude(raw.allBytes(), "CONNECT")
  })

  it("parses Host as an authority equal to the SNI, and refuses //host targets", async () => {
    const bad = [
      "GET / HTTP/1.1\r\nHost: raw.test:443@evil.test\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: raw.test/evil\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: raw.test\r\nHost: evil.test\r\n\r\n",
      "GET //evil.test/x HTTP/1.1\r\nHost: raw.test\r\n\r\n",
    ]
    for (const shape of bad) {
      const answer = await exchange(shape)
      assert.strictEqual(statuses(answer)[0], 400, `${JSON.stringify(shape)} → ${answer}`)
    }
    assert.notInclude(raw.allBytes(), "evil")
    assert.strictEqual(statuses(await exchange("GET /ok HTTP/1.1\r\nHost: RAW.test:443\r\n\r\n"))[0], 200)
  })
})
