import { spawn } from "node:child_process"
import fc from "fast-check"
import { proxyExecArgv } from "../../../core/src/ProxyConfig.ts"
import { proxyMain } from "./ProxyProcess.ts"

/** Generators of proxy config lines: valid ones carrying canary credentials, and their mutations. */

/** A credential value whose distinctive core (`canaryCore`) must never show up in proxy output. */
export const canary = fc.tuple(
  fc.stringMatching(/^[0-9a-f]{16}$/),
  fc.constantFrom("", '"', "\\", "\u00e9", "\u00ff", " tail", "\t", "'"),
).map(([hex, suffix]) => `PAWSCANARY${hex}${suffix}`)

export const canaryCore = (value: string): string => value.slice(0, "PAWSCANARY".length + 16)

const host = fc.constantFrom("api.example.com", "*.example.dev", "git.test", "a.b.c.test")

export const validConfig = fc.record({
  listen: fc.record({
    address: fc.constantFrom("127.0.0.1", "::1", "10.0.0.1"),
    https: fc.constant(0),
    http: fc.constant(0),
    dns: fc.constant(0),
  }),
  dnsAnswer: fc.constantFrom("10.200.0.1", "fd00::1"),
  allowOut: fc.uniqueArray(host, { maxLength: 4 }),
  credentials: fc.dictionary(
    host,
    fc.record({
      headers: fc.dictionary(fc.constantFrom("authorization", "x-api-key", "x-token"), canary, { minKeys: 1 }),
    }),
    { maxKeys: 3 },
  ),
  limits: fc.record({ maxHeaderBytes: fc.integer({ min: 1, max: 65536 }), idleTimeoutMs: fc.integer({ min: 1 }) }, {
    requiredKeys: [],
  }),
}, { requiredKeys: ["listen", "dnsAnswer", "allowOut", "credentials"] })
export type FuzzConfig = typeof validConfig extends fc.Arbitrary<infer T> ? T : never

/** Every canary credential value in a generated config. */
export const canariesOf = (config: FuzzConfig): Array<string> =>
  Object.values(config.credentials).flatMap((rule) => Object.values(rule.headers))

const wrong: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    null,
    -1,
    0.5,
    65536,
    1e21,
    "",
    "not-an-ip",
    "999.1.1.1",
    "http://x",
    "*",
    "*.com",
    "a\r\nb",
    "\u0000",
  ),
  fc.string({ unit: "binary", maxLength: 20 }),
)

/** Breaks one field (by dotted path) of an otherwise valid config; credential values move only as whole rules. */
export const breakConfig = fc.tuple(
  fc.constantFrom(
    "listen",
    "listen.address",
    "listen.https",
    "listen.dns",
    "dnsAnswer",
    "allowOut",
    "credentials",
    "limits.maxHeaderBytes",
    "limits.idleTimeoutMs",
    "upstream",
    "upstream.resolve",
    "upstream.allowPrivateUpstreams",
    "extra",
  ),
  wrong,
  fc.boolean(),
)

export const applyBreak = (config: FuzzConfig, [path, value, remove]: [string, unknown, boolean]): unknown => {
  const copy = structuredClone(config) as Record<string, unknown>
  const keys = path.split(".")
  let at = copy
  for (const k of keys.slice(0, -1)) {
    if (at[k] === null || typeof at[k] !== "object") at[k] = {}
    at = at[k] as Record<string, unknown>
  }
  const last = keys.at(-1)!
  if (remove && path !== "extra") delete at[last]
  else at[last] = value
  return copy
}

export interface ProxyRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Spawns the real proxy, writes `input` to stdin (then EOF), and waits for it to exit (killed after `timeoutMs`). */
export const runProxyWith = (input: Uint8Array | string, timeoutMs = 20_000): Promise<ProxyRun> =>
  new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, [...proxyExecArgv, proxyMain], { stdio: ["pipe", "pipe", "pipe"], env: {} })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    child.stdin!.on("error", () => {}) // the proxy may exit before it has read everything
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
    child.stdin!.end(input)
  })
