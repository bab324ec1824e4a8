import { X509Certificate } from "node:crypto"
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { buildProxySnapshot } from "../src/ProxySnapshotBuild.ts"
import { curl } from "./support/Clients.ts"
import { startProxyProcess } from "./support/ProxyProcess.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let dir: string
let blob: string
let world: TestWorld
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "paws-proxy-snapshot-"))
  // Blobs of earlier sources: one two hours old (removed by the next build), one just made (kept).
  writeFileSync(join(dir, "proxy-00000000000000aa.blob"), "old")
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
  utimesSync(join(dir, "proxy-00000000000000aa.blob"), twoHoursAgo, twoHoursAgo)
  writeFileSync(join(dir, "proxy-00000000000000bb.blob"), "recent")
  blob = (await buildProxySnapshot(dir))!
  world = await startWorld((c) => c, ["--snapshot-blob", blob])
}, 120_000)
afterAll(async () => {
  await world?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("proxy started from its startup snapshot", () => {
  it("is built once and reused while the sources are unchanged", async () => {
    assert.match(blob, /proxy-[0-9a-f]{16}\.blob$/)
    assert.strictEqual(await buildProxySnapshot(dir), blob)
    assert.deepStrictEqual(
      readdirSync(dir).sort(),
      ["proxy-00000000000000bb.blob", blob.split("/").at(-1)].sort(),
      "no build leftovers beside the blob; an hour-old blob of other sources is gone, a recent one kept",
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

  it("makes a fresh CA in every process: nothing random is baked into the snapshot", async () => {
    const config = {
      listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
      dnsAnswer: "127.0.0.1",
      allowOut: ["a.test"],
      credentials: {},
    }
    const a = await startProxyProcess(config, ["--snapshot-blob", blob])
    const b = await startProxyProcess(config, ["--snapshot-blob", blob])
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
