import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ImageBuilder } from "../src/image/ImageBuilder.ts"
import { KeptSnapshotsOnStart, parseKeptSnapshots } from "../src/snapshot/KeptSnapshots.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { SnapshotStore } from "../src/snapshot/SnapshotStore.ts"
import { mirrorNodeLayer } from "./support/MirrorWorld.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"

describe("PAWS_NODE_SNAPSHOTS", () => {
  it("parses NAME[:MEMORY_MB] lists and names a bad entry", () => {
    assert.deepStrictEqual(parseKeptSnapshots("default, claude-agent:2048"), [
      { name: "default", memoryMB: 256 },
      { name: "claude-agent", memoryMB: 2048 },
    ])
    assert.deepStrictEqual(parseKeptSnapshots(""), [])
    assert.include(parseKeptSnapshots("default,Bad Name") as string, `"Bad Name"`)
    assert.include(parseKeptSnapshots("node:lots") as string, "NAME:MEMORY_MB")
  })
})

// A private snapshot dir: the kept snapshot built here is restored by this file only.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-kept-snapshots-"))
const config = { PAWS_SNAPSHOT_DIR: snapshotDir, PAWS_NODE_DEFAULT_SNAPSHOT: "1", PAWS_NODE_SNAPSHOTS: "node:320" }
const world = KeptSnapshotsOnStart.pipe(
  Layer.provide([SnapshotBuilder.layerNoDeps, ImageBuilder.layerNoDeps]),
  Layer.provide(testConfig(config)),
  Layer.provideMerge(mirrorNodeLayer(["node"], config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

layer(world, { excludeTestServices: true, timeout: 600_000 })(
  "a node keeps its configured snapshots (real VMs)",
  (it) => {
    it.effect(
      "PAWS_NODE_SNAPSHOTS=node:320 builds the node snapshot at start; sessions of that size restore it",
      () =>
        Effect.gen(function* () {
          const store = yield* SnapshotStore
          const started = Date.now()
          while (Option.isNone(yield* store.find("node").pipe(Effect.orDie))) {
            assert.isBelow(Date.now() - started, 300_000, "the node snapshot is built in the background")
            yield* Effect.sleep(500)
          }
          yield* Effect.logInfo(`kept node snapshot ready ${Date.now() - started} ms after start`)
          const { statuses, result } = yield* runToEnd(
            dispatchOf("node -p 'process.version'; test -x /run/paws/agent && echo restored", {
              snapshot: "node",
              resources: { vcpus: 1, memoryMB: 320 },
            }),
          )
          assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
          const [version, restored] = result.stdout.trim().split("\n")
          assert.match(version ?? "", /^v24\./)
          assert.strictEqual(
            restored,
            "restored",
            "the session restored the kept snapshot (its guest agent is running)",
          )
          yield* assertNothingLeft
        }),
      400_000,
    )
  },
)
