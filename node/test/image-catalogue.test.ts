import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ImageBuilder } from "../src/image/ImageBuilder.ts"
import { MirrorLog, mirrorNodeLayer, mirrorPackage } from "./support/MirrorWorld.ts"
import { testImageLayer } from "./support/TestImage.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"

/**
 * The Debian catalogue images, booted for real. apt reaches "deb.debian.org" over HTTPS through
 * the VM's proxy (the images' sources use https; the per-VM CA is in the guest's bundle), where
 * the test serves a flat repository of real .debs.
 */
layer(mirrorNodeLayer(["debian", "node"]), { excludeTestServices: true, timeout: 900_000 })(
  "catalogue images (real VMs)",
  (it) => {
    it.effect("debian: the manifest lists every installed package with its version", () =>
      Effect.gen(function* () {
        const image = yield* ImageBuilder.use((b) => b.build("debian"))
        const names = image.manifest.packages.map((p) => p.name)
        for (const p of ["apt", "dpkg", "base-files", "dropbear-bin", "kmod", "iproute2", "ca-certificates"]) {
          assert.include(names, p)
        }
        assert.isTrue(names.some((n) => /^linux-image-/.test(n)), "the boot kernel is listed")
        assert.isTrue(image.manifest.packages.every((p) => p.version.length > 0))
        const started = Date.now()
        const again = yield* ImageBuilder.use((b) => b.build("debian"))
        assert.isBelow(Date.now() - started, 2000, "unchanged inputs are a cache hit")
        assert.strictEqual(again.manifest.inputHash, image.manifest.inputHash)
      }).pipe(Effect.provide(testImageLayer())))

    it.effect(
      "debian: boots, and apt-get installs a package from the mirror through the proxy",
      () =>
        Effect.gen(function* () {
          const mirror = yield* MirrorLog
          const script = [
            "set -e",
            "cat /etc/debian_version",
            "grep -h '^deb ' /etc/apt/sources.list",
            "echo 'deb [trusted=yes] https://deb.debian.org/paws-mirror ./' > /etc/apt/mirror.list",
            "apt='apt-get -q -o Dir::Etc::SourceList=/etc/apt/mirror.list -o Dir::Etc::SourceParts=-'",
            "$apt update >/dev/null",
            `$apt install -y ${mirrorPackage} >/dev/null`,
            `${mirrorPackage} -g installed`,
            `dpkg-query -W -f '\${Status}\\n' ${mirrorPackage}`,
          ].join("\n")
          const started = Date.now()
          const { statuses, result } = yield* runToEnd(dispatchOf(script, {
            snapshot: "debian",
            timeoutMs: 180_000,
            network: { allowOut: ["deb.debian.org"], credentials: {} },
          }))
          const ms = Date.now() - started
          assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
          const lines = result.stdout.trim().split("\n")
          assert.match(lines[0]!, /^12\./, "Debian 12")
          assert.isTrue(lines.some((l) => l.startsWith("deb https://deb.debian.org/debian bookworm ")), result.stdout)
          assert.include(lines, "installed")
          assert.include(lines, "install ok installed")
          const urls = mirror.received.map((r) => `${r.host}${r.url}`)
          assert.isTrue(urls.some((u) => u.startsWith(`deb.debian.org/paws-mirror/${mirrorPackage}_`)), urls.join())
          yield* Effect.logInfo(`debian session with apt-get install: ${ms} ms`)
          yield* assertNothingLeft
        }),
      240_000,
    )

    it.effect("node: Node 24 and npm run in the guest", () =>
      Effect.gen(function* () {
        const started = Date.now()
        const { statuses, result } = yield* runToEnd(dispatchOf(
          "node --version; npm --version; node -e 'console.log(6 * 7)'",
          { snapshot: "node", timeoutMs: 120_000 },
        ))
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
        const [nodeVersion, npmVersion, answer] = result.stdout.trim().split("\n")
        assert.match(nodeVersion ?? "", /^v24\./)
        assert.match(npmVersion ?? "", /^11\./)
        assert.strictEqual(answer, "42")
        yield* Effect.logInfo(`node session: ${Date.now() - started} ms`)
        yield* assertNothingLeft
      }), 240_000)
  },
)
