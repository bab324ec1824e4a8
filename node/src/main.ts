/** `paws node` (`npm run node`): serves NodeRpcs for the control plane; must run as root. */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { CallHome } from "./CallHome.ts"
import { NetnsDialer } from "./guest/NetnsDialer.ts"
import { NodeSshKey } from "./guest/NodeSshKey.ts"
import { ImageBuilder } from "./image/ImageBuilder.ts"
import { ImageStore } from "./image/ImageStore.ts"
import { Firewall } from "./network/Firewall.ts"
import { HostCommand } from "./HostCommand.ts"
import { NetworkSlot } from "./network/NetworkSlot.ts"
import { sessionIdOfTable } from "./network/Naming.ts"
import { Reconciler } from "./network/Reconciler.ts"
import { AddressSlots } from "./network/AddressSlots.ts"
import { NodeConfig } from "./NodeConfig.ts"
import { NodeTeardown } from "./NodeTeardown.ts"
import { VmCostSampler } from "./NodeCapacity.ts"
import { dataDirConfig } from "./image/GuestImage.ts"
import { NodeServer } from "./NodeServer.ts"
import { NodeStartChecks } from "./NodeStartChecks.ts"
import { LiveSessions } from "./session/LiveSessions.ts"
import { SessionRunner } from "./session/SessionRunner.ts"
import { QemuMicrovm } from "./vmm/QemuMicrovm.ts"
import { Vmm, vmRunDirName } from "./vmm/Vmm.ts"
import { SnapshotRestore } from "./snapshot/SnapshotRestore.ts"
import { WarmProxyPool } from "./warm/WarmProxyPool.ts"
import { WarmVmPool } from "./warm/WarmVmPool.ts"
import { KeptSnapshotsOnStart } from "./snapshot/KeptSnapshots.ts"
import { SnapshotBuilder } from "./snapshot/SnapshotBuilder.ts"
import { SnapshotStore } from "./snapshot/SnapshotStore.ts"
import { NodeSnapshots } from "./snapshot/NodeSnapshots.ts"

/** On start nothing is live: every labelled TAP, table and process left from before is removed. */
export const ReconcileOnStart = Layer.effectDiscard(
  Effect.gen(function* () {
    const reconciler = yield* Reconciler
    const config = yield* NodeConfig
    yield* Effect.logInfo(
      `paws node ${config.id}: reconciling${
        Option.match(config.netns, { onNone: () => "", onSome: (ns) => ` in netns ${ns}` })
      }`,
    )
    const removed = yield* reconciler.reconcile(new Set())
    // A killed node also leaves its VMs' run dirs (disk overlays); each VM had a firewall table,
    // so the tables just removed name exactly the dirs that are ours (the run root may be shared).
    const vmm = yield* Vmm
    for (const table of removed.tables) {
      const id = sessionIdOfTable(table)
      if (id === undefined) continue
      const dir = path.join(vmm.runDir, vmRunDirName(id))
      if (yield* Effect.promise(() => fs.rm(dir, { recursive: true }).then(() => true, () => false))) {
        yield* Effect.logWarning(`reconcile: removed orphan run dir ${dir}`)
      }
    }
  }),
)

/** Everything a node runs sessions with, from `PAWS_*` config. */
/** Measures what a VM costs here while VMs run: the next start sizes PAWS_NODE_MAX_VMS by it. */
const VmCostSamplerLive = Layer.unwrap(Effect.map(dataDirConfig, (dir) => VmCostSampler(path.resolve(dir))))

export const NodeServices = Layer.mergeAll(
  LiveSessions.layer,
  Reconciler.layerNoDeps,
  NodeSnapshots.layer,
  VmCostSamplerLive,
).pipe(
  Layer.provideMerge(SessionRunner.layerNoDeps),
  // Warm clones are made only after the start reconcile (one run: layers are shared), which
  // removes everything labelled that a previous node process left, pooled clones included.
  Layer.provideMerge(
    WarmVmPool.layerNoDeps.pipe(Layer.provide(ReconcileOnStart), Layer.provide(Reconciler.layerNoDeps)),
  ),
  Layer.provideMerge(Layer.mergeAll(SnapshotStore.layerNoDeps, SnapshotRestore.layerNoDeps, WarmProxyPool)),
  Layer.provideMerge(
    Layer.mergeAll(
      NetworkSlot.layerNoDeps.pipe(Layer.provide(AddressSlots.layer)),
      Firewall.layerNoDeps,
      QemuMicrovm,
      NetnsDialer.layer,
      ImageStore.layer,
      NodeSshKey.layer,
    ),
  ),
  Layer.provideMerge(NodeTeardown.layer),
  Layer.provideMerge(HostCommand.layer),
  Layer.provideMerge(NodeConfig.layer),
)

/**
 * On SIGINT/SIGTERM, before the RPC server closes: every live session torn down in bulk and
 * ended `failed` with the node's shutdown as reason, its final events still sent to control.
 */
export const StopSessionsFirst = Layer.effectDiscard(Effect.gen(function* () {
  const sessions = yield* LiveSessions
  const config = yield* NodeConfig
  yield* Effect.addFinalizer(() => sessions.shutdown(`node ${config.id} shut down`))
}))

/** Serves /rpc (static mode), calls home (PAWS_CONTROL_URL), or both; see NodeConfig.serveRpc. */
const NodeLinks = Layer.unwrap(Effect.map(NodeConfig, (config) =>
  Layer.mergeAll(
    config.serveRpc ? NodeServer : Layer.empty,
    Option.isSome(config.controlUrl) ? CallHome : Layer.empty,
  )))

/** Reconcile first (it kills every labelled VM), then the background builds of PAWS_NODE_SNAPSHOTS. */
const StartupTasks = KeptSnapshotsOnStart.pipe(
  Layer.provide([SnapshotBuilder.layerNoDeps, ImageBuilder.layerNoDeps]),
  Layer.provideMerge(ReconcileOnStart),
)

export const NodeApp = StopSessionsFirst.pipe(
  // Built after the links, so it runs first when the node stops.
  Layer.provideMerge(NodeLinks),
  Layer.provide(StartupTasks),
  Layer.provide(NodeServices),
  // First of all: refuse an empty token and warn about unsafe settings before reconcile touches anything.
  Layer.provide(NodeStartChecks),
)

if (import.meta.main) {
  if (process.getuid?.() !== 0) {
    console.error("paws node must run as root: it creates TAP devices, nftables tables and VMs.")
    process.exit(1)
  }
  Layer.launch(NodeApp).pipe(NodeRuntime.runMain)
}
