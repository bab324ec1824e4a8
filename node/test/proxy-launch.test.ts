import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { proxyProgram } from "@paws/proxy"
import { proxyLoader } from "@paws/proxy/ProxyBundleBuild"
import { makeProxyLaunch } from "../src/proxy/ProxyLaunch.ts"

describe("ProxyLaunch: proxies start from the bundle while it is there", () => {
  it.effect("marks its bundle used (so another build's cleanup keeps it); a bundle gone means source, then a rebuild", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(path.join(os.tmpdir(), "paws-launch-"))
      const bundle = path.join(dir, "proxy-0123456789abcdef.cjs")
      let builds = 0
      const launch = makeProxyLaunch(() => {
        builds++
        writeFileSync(bundle, "bundle")
        return Promise.resolve(bundle)
      })
      yield* launch.prepare
      const hoursAgo = Date.now() / 1000 - 7200
      utimesSync(bundle, hoursAgo, hoursAgo)
      assert.deepStrictEqual(launch.argv(), [proxyLoader, bundle])
      assert.isAbove(statSync(bundle).mtimeMs, Date.now() - 60_000, "used: no longer an hour old")

      // Removed anyway (say, by hand): the next proxy starts from source, and the next prepare builds it again.
      renameSync(bundle, `${bundle}.gone`)
      assert.deepStrictEqual(launch.argv(), [proxyProgram])
      yield* launch.prepare
      assert.strictEqual(builds, 2)
      assert.deepStrictEqual(launch.argv(), [proxyLoader, bundle])
      yield* launch.prepare
      assert.strictEqual(builds, 2, "built once while the bundle stays")
      rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("no bundle (rolldown missing): proxies start from source", () =>
    Effect.gen(function* () {
      const launch = makeProxyLaunch(() => Promise.resolve(undefined))
      yield* launch.prepare
      assert.deepStrictEqual(launch.argv(), [proxyProgram])
    }))
})
