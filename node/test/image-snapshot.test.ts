import { assert, layer } from "@effect/vitest"
import { newSessionId } from "@paws/core"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { mirrorNodeLayer } from "./support/MirrorWorld.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"

// A private snapshot dir: other test files keep cold-booting the shared images.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-image-snapshot-"))
const config = { PAWS_SNAPSHOT_DIR: snapshotDir }
const world = SnapshotBuilder.layerNoDeps.pipe(
  Layer.provide(testConfig(config)),
  Layer.provideMerge(mirrorNodeLayer(["node"], config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

layer(world, { excludeTestServices: true, timeout: 600_000 })("a Debian image as a snapshot (real VMs)", (it) => {
  it.effect(
    "node: the snapshot builds (guest agent on Debian), sessions restore it with its setup state",
    () =>
      Effect.gen(function* () {
        const builder = yield* SnapshotBuilder
        const started = Date.now()
        yield* Effect.scoped(Effect.gen(function* () {
          const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
          yield* builder.build({
            name: "node",
            setup: "node -e 'console.log(\"set-up-by-\" + process.version)' > /root/marker",
            net: guestNetworkOf(slot),
          })
        }))
        yield* Effect.logInfo(`node snapshot built in ${Date.now() - started} ms`)
        const t0 = Date.now()
        const { statuses, result } = yield* runToEnd(
          dispatchOf("cat /root/marker; node -p '6 * 7'; cat /etc/debian_version", {
            snapshot: "node",
          }),
        )
        yield* Effect.logInfo(`restored node session: ${Date.now() - t0} ms`)
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
        const [marker, answer, debian] = result.stdout.trim().split("\n")
        assert.match(marker ?? "", /^set-up-by-v24\./)
        assert.strictEqual(answer, "42")
        assert.match(debian ?? "", /^12\./)
        yield* assertNothingLeft
      }),
    300_000,
  )
})
