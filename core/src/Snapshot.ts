import * as Schema from "effect/Schema"
import { hardLimits, Network, Resources, SnapshotName } from "./SessionSpec.ts"

/** Setup scripts travel in the request, over the node RPC and into the guest over SSH. */
export const snapshotSetupMaxBytes = 256 * 1024

/**
 * What a client submits to build a snapshot: boot image `base`, run `setup` as root with the
 * network limited to `network.allowOut` through a per-build proxy (credentials injected there,
 * never in the guest), pause and save. Credential values are kept only until the node has them.
 */
export const SnapshotRequest = Schema.Struct({
  name: SnapshotName,
  /** Image to boot; default "default". */
  base: Schema.optionalKey(SnapshotName),
  setup: Schema.optionalKey(
    Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(snapshotSetupMaxBytes))),
  ),
  network: Schema.optionalKey(Network),
  memoryMB: Schema.optionalKey(Resources.fields.memoryMB),
  vcpus: Schema.optionalKey(Resources.fields.vcpus),
  /** The whole build (boot, setup, save) must finish within this; default: the largest session timeout. */
  timeoutMs: Schema.optionalKey(
    Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1000, maximum: hardLimits.timeoutMs }))),
  ),
  /** Build on this node; default: the node with the most free capacity. */
  node: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 63)))),
}).annotate({ identifier: "SnapshotRequest" })
export type SnapshotRequest = typeof SnapshotRequest.Type

export const SnapshotStatus = Schema.Literals(["building", "ready", "failed", "stale"]).annotate({
  identifier: "SnapshotStatus",
})
export type SnapshotStatus = typeof SnapshotStatus.Type

/** What a snapshot was made from and what every restore reproduces (no secrets, no setup text). */
export const SnapshotManifestSummary = Schema.Struct({
  image: Schema.Struct({ name: Schema.String, hash: Schema.String }),
  memoryMB: Schema.Int,
  vcpus: Schema.Int,
  accelerator: Schema.String,
  cmdline: Schema.String,
  devices: Schema.Array(Schema.String),
  macPlan: Schema.Struct({ guestMac: Schema.String, hostMac: Schema.String }),
  createdAt: Schema.String,
  /** Milliseconds from the start of the build to the end of each phase, and `total`. */
  buildMs: Schema.Record(Schema.String, Schema.Number),
  setupSha256: Schema.String,
}).annotate({ identifier: "SnapshotManifestSummary" })
export type SnapshotManifestSummary = typeof SnapshotManifestSummary.Type

/** One snapshot on one node, or one build of it. */
export const SnapshotView = Schema.Struct({
  name: SnapshotName,
  node: Schema.String,
  /** `stale`: it exists but may not be restored (its image was rebuilt, the devices changed …); see `error`. */
  status: SnapshotStatus,
  /** The build's current (or last) phase: queued, started, booted, network, setup, agent, saved, ready. */
  phase: Schema.optionalKey(Schema.String),
  /** Every phase the build has passed so far, with ms since its start (builds this control plane started). */
  phases: Schema.optionalKey(Schema.Array(Schema.Struct({ phase: Schema.String, ms: Schema.Number }))),
  /** Hosts the setup script tried to reach that its proxy refused (not in `network.allowOut`). */
  refusedHosts: Schema.optionalKey(Schema.Array(Schema.String)),
  error: Schema.optionalKey(Schema.String),
  startedAt: Schema.optionalKey(Schema.String),
  manifest: Schema.optionalKey(SnapshotManifestSummary),
  /** The project that built it; absent: the instance's own (e.g. `default`), seen and used by every project. */
  project: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "Snapshot" })
export type SnapshotView = typeof SnapshotView.Type

/** Response of `POST /v1/snapshots`: the build runs on `node`; follow it with `GET /v1/snapshots/{name}`. */
export const SnapshotAccepted = Schema.Struct({
  name: SnapshotName,
  node: Schema.String,
  status: SnapshotStatus,
  /** The project it is built in (the key's); absent: an instance snapshot rebuilt by the instance admin. */
  project: Schema.optionalKey(Schema.String),
  /** Accepted, but worth a second look (e.g. a wildcard credential over a public suffix); absent when none. */
  warnings: Schema.optionalKey(Schema.Array(Schema.String)),
}).annotate({ identifier: "SnapshotAccepted" })
export type SnapshotAccepted = typeof SnapshotAccepted.Type

/** One event of a node's build: progress while it runs, the snapshot at the end. */
export const SnapshotBuildEvent = Schema.Union([
  Schema.TaggedStruct("progress", { phase: Schema.String, ms: Schema.Number }),
  /** The setup script tried a host its proxy refused (each host once). */
  Schema.TaggedStruct("refused", { host: Schema.String, decision: Schema.String }),
  Schema.TaggedStruct("built", { snapshot: SnapshotView }),
])
export type SnapshotBuildEvent = typeof SnapshotBuildEvent.Type

export class SnapshotNotFound extends Schema.TaggedError<SnapshotNotFound>()("SnapshotNotFound", {
  snapshot: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

/** A build of that name is running (on control's or the node's word). */
export class SnapshotBusy extends Schema.TaggedError<SnapshotBusy>()("SnapshotBusy", {
  snapshot: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

export class SnapshotBuildFailed extends Schema.TaggedError<SnapshotBuildFailed>()("SnapshotBuildFailed", {
  snapshot: Schema.String,
  message: Schema.String,
}) {}
