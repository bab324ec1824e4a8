import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import type { LlmExchange } from "../../core/src/LlmExchange.ts"
import { curl } from "./support/Clients.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

const maxBytes = 2048
let world: TestWorld
let plain: TestWorld
beforeAll(async () => {
  world = await startWorld((c) => ({ ...c, llmHistory: { maxBytes } }))
  plain = await startWorld()
})
afterAll(async () => {
  // close() also checks that no credential value appears in anything the proxy wrote (llm messages included).
  await world?.close()
  await plain?.close()
})

const exchanges = (w: TestWorld): Array<LlmExchange> =>
  w.proxy.messages.flatMap((m) => (m._tag === "llm" ? [m.exchange] : []))

/** The `llm` message for `path`, once the proxy has sent it (after the response closed). */
const exchangeFor = async (w: TestWorld, path: string): Promise<LlmExchange> => {
  for (let i = 0; i < 200; i++) {
    const hit = exchanges(w).find((e) => e.path.split("?")[0] === path)
    if (hit !== undefined) return hit
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`no llm message for ${path}; got ${JSON.stringify(exchanges(w).map((e) => e.path))}`)
}

const post = (w: TestWorld, host: string, path: string, body: string) =>
  curl(["-X", "POST", "-H", "content-type: application/json", "--data-binary", body, ...viaProxy(w, host, path)])

describe("proxy: LLM history recording", () => {
  it("records an Anthropic Messages exchange: bodies only, the injected key redacted from both", async () => {
    // The guest cannot know the key, but a body that carries it anyway must not be recorded with it;
    // the fake upstream echoes the request's headers (the injected x-api-key included) in its body.
    const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: `hi ${world.secrets.anthropic}` }] })
    const r = await post(world, "api.anthropic.com", "/v1/messages?beta=true", body)
    assert.strictEqual(r.status, 200, r.body)
    assert.notInclude(r.body, world.secrets.anthropic, "the guest's copy is redacted")
    const e = await exchangeFor(world, "/v1/messages")
    assert.deepInclude(e, { host: "api.anthropic.com", method: "POST", status: 200, truncated: false })
    assert.strictEqual(e.path, "/v1/messages?beta", "query values are dropped, as in audit rows")
    assert.include(e.request, `"content":"hi `)
    assert.notInclude(e.request, world.secrets.anthropic)
    assert.include(e.response, "x-api-key", "the echoed headers are in the recorded response")
    assert.notInclude(e.response, world.secrets.anthropic)
    assert.notInclude(JSON.stringify(e), "content-type: application/json", "request headers are never recorded")
  })

  it("records OpenAI-compatible chat completions on any host, and cuts bodies at the cap", async () => {
    const big = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(5000) }] })
    const r = await post(world, "echo.test", "/v1/chat/completions", big)
    assert.strictEqual(r.status, 200, r.body)
    assert.include(r.body, "x".repeat(5000), "the guest gets the whole response; only the record is cut")
    const e = await exchangeFor(world, "/v1/chat/completions")
    assert.strictEqual(e.host, "echo.test")
    assert.isTrue(e.truncated)
    assert.strictEqual(Buffer.byteLength(e.request), maxBytes)
    assert.isAtMost(Buffer.byteLength(e.response), maxBytes)
    assert.notInclude(e.response, world.secrets.echo)
  })

  it("a compressed body is not recorded as garbage: it says so", async () => {
    const file = join(world.dir, "body.gz")
    writeFileSync(file, gzipSync(JSON.stringify({ messages: [] })))
    const r = await curl([
      "-X",
      "POST",
      "-H",
      "content-encoding: gzip",
      "--data-binary",
      `@${file}`,
      ...viaProxy(world, "echo.test", "/gateway/v1/chat/completions"),
    ])
    assert.strictEqual(r.status, 200, r.body)
    const e = await exchangeFor(world, "/gateway/v1/chat/completions")
    assert.strictEqual(e.request, "[request body not recorded: content-encoding gzip]")
    assert.include(e.response, "echo.test")
  })

  it("records nothing else: other paths and methods, or a proxy configured without llmHistory", async () => {
    const before = exchanges(world).length
    assert.strictEqual((await curl(viaProxy(world, "api.anthropic.com", "/v1/models"))).status, 200)
    assert.strictEqual((await post(world, "api.anthropic.com", "/v1/messages/count_tokens", "{}")).status, 200)
    assert.strictEqual((await post(world, "echo.test", "/v1/other", "{}")).status, 200)
    assert.strictEqual((await post(plain, "api.anthropic.com", "/v1/messages", "{}")).status, 200)
    await world.proxy.waitForAudit((a) => a.path === "/v1/other")
    await plain.proxy.waitForAudit((a) => a.path === "/v1/messages")
    assert.strictEqual(exchanges(world).length, before)
    assert.deepStrictEqual(exchanges(plain), [])
  })
})
