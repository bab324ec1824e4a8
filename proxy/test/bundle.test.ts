import { X509Certificate } from "node:crypto"
import { copyFileSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { buildProxyBundle, proxyLoader, writeCodeCache } from "../src/ProxyBundleBuild.ts"
import { curl } from "./support/Clients.ts"
import { startProxyProcess } from "./support/ProxyProcess.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
/** The node's sandbox runs every proxy under Node's permission model: V8 must accept the cache there too. */
const permission = ["--permission", `--allow-fs-read=${root}`, `--allow-fs-read=${tmpdir()}`]
const config = {
  listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
  dnsAnswer: "127.0.0.1",
  allowOut: ["a.test"],
  credentials: {},
}

let dir: string
let bundle: string
let world: TestWorld
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "paws-proxy-bundle-"))
  // Builds of earlier sources: one two hours old (removed by the next build), one just made (kept).
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
  for (const name of ["proxy-00000000000000aa.cjs", "proxy-00000000000000aa.code"]) {
    writeFileSync(join(dir, name), "old")
    utimesSync(join(dir, name), twoHoursAgo, twoHoursAgo)
  }
  writeFileSync(join(dir, "proxy-00000000000000bb.cjs"), "recent")
  writeFileSync(join(dir, "proxy-00000000000000bb.code"), "recent")
  bundle = (await buildProxyBundle(dir))!
  world = await startWorld((c) => c, [...permission, proxyLoader, bundle])
}, 120_000)
afterAll(async () => {
  await world?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("proxy started from its bundle and code cache", () => {
  it("is built once and reused while the sources are unchanged; older builds go after an hour unused", async () => {
    assert.match(bundle, /proxy-[0-9a-f]{16}\.cjs$/)
    assert.strictEqual(await buildProxyBundle(dir), bundle)
    const name = bundle.split("/").at(-1)!
    assert.deepStrictEqual(
      readdirSync(dir).sort(),
      ["proxy-00000000000000bb.cjs", "proxy-00000000000000bb.code", name, name.replace(/\.cjs$/, ".code")].sort(),
      "no build leftovers; the hour-old build of other sources is gone, the recent one kept",
    )
  })

  it("terminates TLS with its per-VM CA and injects the credential, as the proxy run from source does", async () => {
    const res = await curl(viaProxy(world, "api.anthropic.com", "/v1/messages"))
    assert.strictEqual(res.status, 200)
    const got = world.upstreams.received.filter((r) => r.host === "api.anthropic.com").at(-1)!
    assert.strictEqual(got.headers["x-api-key"], world.secrets.anthropic)
    const denied = await curl(viaProxy(world, "evil.test"))
    assert.strictEqual(denied.status, 403)
  })

  it("V8 accepts the code cache under the permission model; a cache it rejects is said and only costs time", async () => {
    assert.strictEqual(world.proxy.stderr(), "", "no rejected code cache")
    const other = join(mkdtempSync(join(dir, "copy-")), "proxy-0123456789abcdef.cjs")
    copyFileSync(bundle, other)
    writeFileSync(other.replace(/\.cjs$/, ".code"), "not a code cache")
    const p = await startProxyProcess(config, [...permission, proxyLoader, other])
    try {
      assert.match(p.stderr(), /code cache beside the bundle was rejected/)
      assert.isAbove(p.ports.https, 0)
    } finally {
      await p.stop()
    }
  })

  it("a build whose proxy never becomes ready fails in bounded time (the node then runs proxies from source)", async () => {
    const stuck = join(mkdtempSync(join(dir, "stuck-")), "proxy.cjs")
    writeFileSync(stuck, "exports.runProxy = () => setInterval(() => {}, 1e9)\n")
    const started = Date.now()
    const error = await writeCodeCache(process.execPath, stuck, `${stuck}.code`, dir, 1_000).then(
      () => undefined,
      (e) => e,
    )
    assert.match(String(error), /code cache not written .*no ready and exit within 1000 ms/s)
    assert.isBelow(Date.now() - started, 10_000)
  })

  it("makes a fresh CA in every process: nothing random is kept from the build", async () => {
    const a = await startProxyProcess(config, [...permission, proxyLoader, bundle])
    const b = await startProxyProcess(config, [...permission, proxyLoader, bundle])
    try {
      const [ca, cb, cw] = [a.caPem, b.caPem, world.proxy.caPem].map((pem) => new X509Certificate(pem))
      assert.isTrue(ca!.ca)
      assert.notStrictEqual(
        ca!.publicKey.export({ format: "pem", type: "spki" }),
        cb!.publicKey.export({ format: "pem", type: "spki" }),
      )
      assert.notStrictEqual(
        ca!.publicKey.export({ format: "pem", type: "spki" }),
        cw!.publicKey.export({ format: "pem", type: "spki" }),
      )
      assert.notStrictEqual(ca!.subject, cb!.subject)
      assert.notStrictEqual(ca!.serialNumber, cb!.serialNumber)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
