import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { proxyProgram } from "@paws/proxy"
import { makeProxyLaunch } from "../src/proxy/ProxyLaunch.ts"

describe("ProxyLaunch: proxies start from the snapshot blob while it is there", () => {
  it.effect("marks its blob used (so another build's cleanup keeps it); a blob gone means source, then a rebuild", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(path.join(os.tmpdir(), "paws-launch-"))
      const blob = path.join(dir, "proxy-0123456789abcdef.blob")
      let builds = 0
      const launch = makeProxyLaunch(() => {
        builds++
        writeFileSync(blob, "blob")
        return Promise.resolve(blob)
      })
      yield* launch.prepare
      const hoursAgo = Date.now() / 1000 - 7200
      utimesSync(blob, hoursAgo, hoursAgo)
      assert.deepStrictEqual(launch.argv(), ["--snapshot-blob", blob])
      assert.isAbove(statSync(blob).mtimeMs, Date.now() - 60_000, "used: no longer an hour old")

      // Removed anyway (say, by hand): the next proxy starts from source, and the next prepare builds it again.
      renameSync(blob, `${blob}.gone`)
      assert.deepStrictEqual(launch.argv(), [proxyProgram])
      yield* launch.prepare
      assert.strictEqual(builds, 2)
      assert.deepStrictEqual(launch.argv(), ["--snapshot-blob", blob])
      yield* launch.prepare
      assert.strictEqual(builds, 2, "built once while the blob stays")
      rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("no snapshot (rolldown missing): proxies start from source", () =>
    Effect.gen(function* () {
      const launch = makeProxyLaunch(() => Promise.resolve(undefined))
      yield* launch.prepare
      assert.deepStrictEqual(launch.argv(), [proxyProgram])
    }))
})
