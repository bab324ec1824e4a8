import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { NetnsDialer } from "../../src/guest/NetnsDialer.ts"
import { ImageBuilder } from "../../src/image/ImageBuilder.ts"
import { HostCommand } from "../../src/HostCommand.ts"
import { NetworkSlot } from "../../src/network/NetworkSlot.ts"
import { AddressSlots, parsePool } from "../../src/network/AddressSlots.ts"
import type { ParsedPool } from "../../src/network/AddressSlots.ts"
import { SnapshotBuilder } from "../../src/snapshot/SnapshotBuilder.ts"
import { SnapshotRestore } from "../../src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../../src/snapshot/SnapshotStore.ts"
import { makeQemuMicrovm } from "../../src/vmm/QemuMicrovm.ts"
import { Vmm } from "../../src/vmm/Vmm.ts"
import { makeNetns } from "./Netns.ts"
import { testConfig, testImageLayer } from "./TestImage.ts"

/**
 * Snapshot services over a fresh netns with real network slots, the shared test image and a
 * private snapshot dir (removed at the end), so other test files never restore these snapshots.
 */
export const snapshotWorldLayer = Layer.unwrap(Effect.gen(function* () {
  const netns = yield* makeNetns("snap")
  const snapshotDir = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "paws-snapshots-"))),
    (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true })),
  )
  const runDir = path.join(snapshotDir, "run")
  yield* ImageBuilder.use((b) => b.build()).pipe(Effect.provide(testImageLayer()), Effect.orDie)
  const host = Layer.succeed(HostCommand, HostCommand.make(Option.some(netns)))
  const pool = Layer.effect(AddressSlots, AddressSlots.make(parsePool("172.16.0.0/24") as ParsedPool))
  const vmm = Layer.effect(Vmm, makeQemuMicrovm({ runDir, accel: "auto", netns }).pipe(Effect.map(Vmm.of)))
  const base = Layer.mergeAll(
    vmm,
    Layer.effect(NetnsDialer, NetnsDialer.make(netns).pipe(Effect.map(NetnsDialer.of), Effect.orDie)),
    NetworkSlot.layerNoDeps.pipe(Layer.provide([pool, host])),
    host,
  )
  return Layer.mergeAll(SnapshotBuilder.layerNoDeps, SnapshotStore.layerNoDeps, SnapshotRestore.layerNoDeps).pipe(
    Layer.provideMerge(base),
    Layer.provideMerge(testImageLayer({ PAWS_SNAPSHOT_DIR: snapshotDir })),
    Layer.provideMerge(testConfig({ PAWS_SNAPSHOT_DIR: snapshotDir })),
  )
}))
