import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import WebSocket from "ws"
import { curl, loopbackLookup, proxiedRequest } from "./support/Clients.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let world: TestWorld
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

describe("proxy: streaming and echo protection", () => {
  it("streams Server-Sent Events as they are produced", async () => {
    const arrivals: Array<number> = []
    let text = ""
    const started = performance.now()
    await new Promise<void>((resolve, reject) => {
      const req = proxiedRequest(world.proxy.ports.https, "sse.test", world.proxy.caPem, { path: "/stream" })
      req.on("response", (res) => {
        res.on("data", (c: Buffer) => {
          arrivals.push(performance.now() - started)
          text += c.toString()
        })
        res.on("end", resolve)
      })
      req.on("error", reject)
      req.end()
    })
    assert.strictEqual(text, [0, 1, 2, 3, 4].map((n) => `data: token-${n}\n\n`).join(""), text)
    // Five events 150 ms apart: each arrives on its own, the first long before the last.
    assert.isAtLeast(arrivals.length, 4)
    assert.isAbove(arrivals.at(-1)! - arrivals[0]!, 400)
  })

  it("streams a chunked upload and its response both ways without buffering", async () => {
    const rounds = await new Promise<number>((resolve, reject) => {
      const req = proxiedRequest(world.proxy.ports.https, "duplex.test", world.proxy.caPem, {
        method: "POST",
        path: "/upload",
        headers: { "content-type": "application/octet-stream" },
      })
      let round = 0
      const send = () => req.write(`chunk-${round};`)
      req.on("response", (res) => {
        res.on("data", (c: Buffer) => {
          // The echo of chunk n arrives while the request is still open: nothing waited for the end.
          assert.include(c.toString(), `chunk-${round};`)
          if (++round < 5) send()
          else req.end()
        })
        res.on("end", () => resolve(round))
      })
      req.on("error", reject)
      req.flushHeaders()
      send()
    })
    assert.strictEqual(rounds, 5)
  })

  it("redacts an echoed credential in headers and body, raw, base64, URL- and JSON-encoded", async () => {
    const res = await curl(viaProxy(world, "echo.test", "/reflect"))
    assert.strictEqual(res.status, 200)
    const secret = world.secrets.echo
    const echoed = world.upstreams.received.filter((r) => r.host === "echo.test").at(-1)!
    assert.strictEqual(echoed.headers["authorization"], `Bearer ${secret}`)
    assert.match(res.headers["x-echo-authorization"]!, /^Bearer \[redacted-by-paws\]/)
    const everything = JSON.stringify(res)
    for (
      const form of [
        secret,
        Buffer.from(secret).toString("base64").slice(0, -4),
        Buffer.from(`Bearer ${secret}`).toString("base64").slice(12, -4),
        encodeURIComponent(`Bearer ${secret}`),
      ]
    ) assert.notInclude(everything, form)
    assert.include(res.body, "redacted-by-paws")
    await world.proxy.waitForAudit((e) => e.decision === "echo_redacted" && e.host === "echo.test")
  })

  it("proxies a WebSocket with the credential injected into the handshake and redacted on the way back", async () => {
    const ws = new WebSocket(`wss://ws.test:${world.proxy.ports.https}/socket`, {
      ca: world.proxy.caPem,
      lookup: loopbackLookup,
    })
    const messages: Array<string> = []
    await new Promise<void>((resolve, reject) => {
      ws.on("message", (data) => {
        messages.push(data.toString())
        if (messages.length === 1) ws.send("ping-1")
        if (messages.length === 2) resolve()
      })
      ws.on("error", reject)
    })
    ws.close()
    const handshake = world.upstreams.received.filter((r) => r.host === "ws.test").at(-1)!
    assert.strictEqual(handshake.headers["authorization"], `Bearer ${world.secrets.ws}`)
    assert.notInclude(messages[0]!, world.secrets.ws)
    assert.include(messages[0]!, "authorization=Bearer [redacted-by-paws]")
    assert.strictEqual(messages[1], "echo:ping-1")
  })

  const firstMessage = (path: string) =>
    new Promise<{ message: string; extensions: string }>((resolve, reject) => {
      // The ws client offers permessage-deflate by default.
      const ws = new WebSocket(`wss://ws.test:${world.proxy.ports.https}${path}`, {
        ca: world.proxy.caPem,
        lookup: loopbackLookup,
      })
      ws.on("message", (data) => {
        resolve({ message: data.toString(), extensions: ws.extensions })
        ws.close()
      })
      ws.on("error", reject)
    })

  it("never lets a WebSocket with an injected credential negotiate compression", async () => {
    const { message, extensions } = await firstMessage("/deflate")
    const handshake = world.upstreams.received.filter((r) => r.url === "/deflate").at(-1)!
    assert.isUndefined(handshake.headers["sec-websocket-extensions"])
    assert.strictEqual(extensions, "")
    assert.notInclude(message, world.secrets.ws)
    assert.include(message, "authorization=Bearer [redacted-by-paws]")
  })

  it("redacts a credential echoed across two WebSocket frames", async () => {
    const { message } = await firstMessage("/fragmented")
    assert.notInclude(message, world.secrets.ws)
    assert.notInclude(message, world.secrets.ws.slice(0, -10))
    assert.include(message, "authorization=Bearer [redacted-by-paws]")
  })

  it("decodes a compressed response to an injected request before scanning it for echoes", async () => {
    for (const encoding of ["gzip", "br", "deflate"]) {
      const res = await curl([...viaProxy(world, "echo.test", `/compressed?encoding=${encoding}`), "--compressed"])
      assert.strictEqual(res.status, 200)
      assert.isUndefined(res.headers["content-encoding"], encoding)
      assert.notInclude(res.body, world.secrets.echo)
      assert.include(res.body, "redacted-by-paws")
    }
    // A HEAD answer carries the encoding but no body: nothing to decode, passed as is.
    const head = await curl([...viaProxy(world, "echo.test", "/compressed?encoding=gzip"), "-I"])
    assert.strictEqual(head.status, 200)
    assert.strictEqual(head.headers["content-encoding"], "gzip")
    const odd = await curl(viaProxy(world, "echo.test", "/compressed?encoding=x-paws-unknown"))
    assert.strictEqual(odd.status, 502)
    assert.include(odd.body, "cannot decode")
    assert.notInclude(odd.body, world.secrets.echo)
  })
})
