import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import fc from "fast-check"
import { validateHeaderValue } from "node:http"
import { decodeProxyMessageLine } from "../../core/src/ProxyConfig.ts"
import { decodeConfig } from "../src/ParentChannel.ts"
import { applyBreak, breakConfig, canariesOf, canaryCore, runProxyWith, validConfig } from "./support/FuzzConfig.ts"

const runs: Record<string, number> = {}
afterAll(() => {
  const total = Object.values(runs).reduce((a, b) => a + b, 0)
  console.log(`fuzz-config: ${JSON.stringify(runs)} total=${total}`)
})
const count = (name: string) => (runs[name] = (runs[name] ?? 0) + 1)

/** The decoder's verdict on one line: the error message, or undefined when the config is valid. */
const verdict = (line: string): string | undefined => {
  const exit = Effect.runSyncExit(decodeConfig(line))
  if (Exit.isSuccess(exit)) return undefined
  assert.isTrue(Exit.hasFails(exit), `decodeConfig died instead of failing on ${line.slice(0, 200)}`)
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")!.error
  return error.message
}

const assertNoCanary = (text: string, canaries: ReadonlyArray<string>, what: string) => {
  for (const c of canaries) {
    assert.notInclude(text, canaryCore(c), `${what} leaked a credential value: ${text.slice(0, 500)}`)
  }
}

/** Garbage lines: random text, JSON of any shape, and valid configs with one field broken. */
const garbageLine = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => ({ line: s.replaceAll("\n", " "), canaries: [] })),
  fc.jsonValue({ maxDepth: 3 }).map((v) => ({ line: JSON.stringify(v), canaries: [] })),
  fc.tuple(validConfig, breakConfig).map(([config, broken]) => ({
    line: JSON.stringify(applyBreak(config, broken)),
    canaries: canariesOf(config),
  })),
  // A config whose credentials themselves are malformed, canaries inside.
  fc.tuple(validConfig, fc.constantFrom("\r\n", "\u0000", "x".repeat(9000))).map(([config, bad]) => {
    const canaries = canariesOf(config)
    const credentials = Object.fromEntries(
      Object.entries(config.credentials).map(([h, rule]) => [
        h,
        { headers: Object.fromEntries(Object.entries(rule.headers).map(([n, v]) => [n, v + bad])) },
      ]),
    )
    return { line: JSON.stringify({ ...config, credentials, listen: "broken" }), canaries }
  }),
)

describe("fuzz: proxy config pipe", () => {
  it("the config decoder fails cleanly on garbage and never echoes a credential value", () => {
    fc.assert(
      fc.property(garbageLine, ({ line, canaries }) => {
        count("decoderGarbage")
        const message = verdict(line)
        if (message !== undefined) assertNoCanary(message, canaries, "decode error")
      }),
      { numRuns: 2500 },
    )
    fc.assert(
      fc.property(validConfig, (config) => {
        count("decoderValid")
        assert.isUndefined(verdict(JSON.stringify(config)), JSON.stringify(config))
      }),
      { numRuns: 300 },
    )
  })

  it("every credential value the decoder accepts is one Node's HTTP stack can send", () => {
    // A value it cannot send (e.g. an emoji) made every request to that host hang at the proxy.
    const value = fc.string({ unit: "binary", maxLength: 12 })
    fc.assert(
      fc.property(validConfig, value, (config, v) => {
        count("decoderHeaderValues")
        const line = JSON.stringify({ ...config, credentials: { "api.example.com": { headers: { "x-api-key": v } } } })
        if (verdict(line) === undefined) {
          assert.doesNotThrow(() => validateHeaderValue("x-api-key", v), undefined, undefined, JSON.stringify(v))
        }
      }),
      { numRuns: 1000 },
    )
  })

  it("the real proxy exits 2 with one fatal error line, no credential value, in bounded time", async () => {
    const input = fc.oneof(
      garbageLine.filter(({ line }) => line.trim() !== "").map(({ line, canaries }) => ({
        bytes: Buffer.from(line + "\n"),
        canaries,
        invalid: verdict(line) !== undefined,
      })),
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => ({ bytes, canaries: [], invalid: true }))
        .filter(({ bytes }) => {
          const text = Buffer.from(bytes).toString()
          return text.trim() !== "" && verdict(text.split("\n")[0]!) !== undefined
        }),
      fc.constantFrom("", "\n", "   \n", "{", '{"listen":').map((s) => ({
        bytes: Buffer.from(s),
        canaries: [],
        invalid: true,
      })),
    )
    await fc.assert(
      fc.asyncProperty(input, async ({ bytes, canaries, invalid }) => {
        count("realProxy")
        const run = await runProxyWith(bytes)
        assertNoCanary(run.stdout + run.stderr, canaries, "proxy output")
        if (!invalid) return // a valid config: the proxy started and stopped at EOF
        assert.strictEqual(run.code, 2, `exit ${run.code} after ${run.ms} ms: ${run.stdout} ${run.stderr}`)
        const lines = run.stdout.split("\n").filter((l) => l !== "")
        assert.strictEqual(lines.length, 1, run.stdout)
        const message = decodeProxyMessageLine(lines[0]!)
        assert.strictEqual(message._tag, "error")
        assert.isTrue(message._tag === "error" && message.fatal)
      }),
      { numRuns: 16 },
    )
  }, 120_000)

  it("a config line over 4 MiB without a newline is refused, not buffered forever", async () => {
    count("realProxy")
    const run = await runProxyWith(Buffer.alloc(5 * 1024 * 1024, "a"))
    assert.strictEqual(run.code, 2, run.stdout)
    assert.match(run.stdout, /exceeds 4 MiB/)
  }, 60_000)
})
