import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { escapeNodeConfig, escapeSuite } from "./support/EscapeSuite.ts"
import { testConfig } from "./support/TestImage.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// Sessions restore from a snapshot (the production default) and run over the guest agent: the
// same suite must hold for clones. A private snapshot dir, built before the suite's run.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-escape-restored-"))
const config = { ...escapeNodeConfig, PAWS_SNAPSHOT_DIR: snapshotDir }
const buildDefaultSnapshot = Layer.effectDiscard(
  Effect.scoped(Effect.gen(function* () {
    const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
    yield* (yield* SnapshotBuilder).build({
      name: "default",
      net: guestNetworkOf(slot),
    })
  })).pipe(Effect.orDie),
)
const world = buildDefaultSnapshot.pipe(
  Layer.provideMerge(SnapshotBuilder.layerNoDeps.pipe(
    Layer.provide(testConfig(config)),
    Layer.provideMerge(testNodeLayer(config)),
  )),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

escapeSuite("escape suite (from inside a real VM restored from a snapshot)", world, true)
