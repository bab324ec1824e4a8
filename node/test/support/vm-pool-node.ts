/**
 * A stand-in node for vm-pool.test.ts: fills a WarmVmPool in the given netns, prints "ready" once
 * it is full, then waits to be SIGKILLed (the test then checks that the start reconcile removes
 * everything it left). Settings come from env: PAWS_T_NETNS, PAWS_T_RUN_DIR, PAWS_SNAPSHOT_DIR,
 * PAWS_NODE_VM_POOL, PAWS_NODE_VM_POOL_SNAPSHOT.
 */
import { Effect, Layer, Option } from "effect"
import { Firewall } from "../../src/network/Firewall.ts"
import { HostCommand } from "../../src/HostCommand.ts"
import { NetworkSlot } from "../../src/network/NetworkSlot.ts"
import { AddressSlots, parsePool } from "../../src/network/AddressSlots.ts"
import type { ParsedPool } from "../../src/network/AddressSlots.ts"
import { WarmVmPool } from "../../src/warm/WarmVmPool.ts"
import { SnapshotRestore } from "../../src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../../src/snapshot/SnapshotStore.ts"
import { makeQemuMicrovm } from "../../src/vmm/QemuMicrovm.ts"
import { Vmm } from "../../src/vmm/Vmm.ts"
import { testConfig, testImageLayer } from "./TestImage.ts"

const env = (name: string) => {
  const v = process.env[name]
  if (v === undefined) throw new Error(`${name} is not set`)
  return v
}
const netns = env("PAWS_T_NETNS")
const snapshots = { PAWS_SNAPSHOT_DIR: env("PAWS_SNAPSHOT_DIR") }
const host = Layer.succeed(HostCommand, HostCommand.make(Option.some(netns)))
// Other addresses than the test's own slots: both may exist in the netns at once.
const slots = Layer.effect(AddressSlots, AddressSlots.make(parsePool("172.16.1.0/24") as ParsedPool))
const vmm = Layer.effect(
  Vmm,
  makeQemuMicrovm({ runDir: env("PAWS_T_RUN_DIR"), accel: "auto", netns }).pipe(Effect.map(Vmm.of)),
)

const world = WarmVmPool.layerNoDeps.pipe(
  Layer.provideMerge(Layer.mergeAll(SnapshotStore.layerNoDeps, SnapshotRestore.layerNoDeps)),
  Layer.provideMerge(
    Layer.mergeAll(vmm, NetworkSlot.layerNoDeps.pipe(Layer.provide([slots, host])), Firewall.layerNoDeps),
  ),
  Layer.provideMerge(host),
  Layer.provideMerge(testImageLayer(snapshots)),
  Layer.provide(testConfig({
    ...snapshots,
    PAWS_NODE_VM_POOL: env("PAWS_NODE_VM_POOL"),
    PAWS_NODE_VM_POOL_SNAPSHOT: env("PAWS_NODE_VM_POOL_SNAPSHOT"),
  })),
)

Effect.gen(function* () {
  const pool = yield* WarmVmPool
  while ((yield* pool.idle) < pool.size) yield* Effect.sleep(50)
  console.log("ready")
  return yield* Effect.never
}).pipe(Effect.provide(world), Effect.runPromise).catch((e) => {
  console.error(e)
  process.exit(1)
})
