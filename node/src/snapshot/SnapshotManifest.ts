import { Config, Data, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { dataDirConfig } from "../image/GuestImage.ts"
import type { GuestImage } from "../image/GuestImage.ts"
import { nodeSettings } from "../NodeConfig.ts"

/** Bumped whenever the restore procedure or the guest agent protocol changes: old snapshots are refused. */
export const snapshotFormat = 4

export const snapshotFiles = {
  /** Device state (`migrate` with x-ignore-shared: RAM is not in it). */
  state: "devices.mig",
  /** Guest RAM, written through a shared file mapping while the source VM ran; clones map it privately. */
  ram: "memory.ram",
  /** The source VM's qcow2 overlay over the image's rootfs; read-only backing for every clone. */
  disk: "disk.qcow2",
  manifest: "manifest.json",
} as const

const File = Schema.Struct({ file: Schema.String, bytes: Schema.Number })

/** `manifest.json` of one snapshot: everything a restore must reproduce exactly, and what it was made from. */
export const SnapshotManifest = Schema.Struct({
  format: Schema.Number,
  name: Schema.String,
  createdAt: Schema.String,
  image: Schema.Struct({
    name: Schema.String,
    inputHash: Schema.String,
    rootfsSha256: Schema.String,
    kernelSha256: Schema.String,
    initrdSha256: Schema.String,
  }),
  memoryMB: Schema.Number,
  vcpus: Schema.Number,
  accelerator: Schema.Literals(["kvm", "tcg"]),
  /** Kernel command line the source booted with; clones pass the identical one. */
  cmdline: Schema.String,
  /** QEMU machine + device arguments with per-VM paths as placeholders; must equal the current driver's. */
  devices: Schema.Array(Schema.String),
  /** Fixed MACs: a restored guest keeps the gateway's MAC in its ARP cache. */
  macPlan: Schema.Struct({ guestMac: Schema.String, hostMac: Schema.String }),
  qemuVersion: Schema.String,
  setupSha256: Schema.String,
  files: Schema.Struct({ state: File, ram: File, disk: File }),
  /** Wall time of each build phase (ms), for progress and benchmarks. */
  buildMs: Schema.Record(Schema.String, Schema.Number),
})
export type SnapshotManifest = typeof SnapshotManifest.Type

/** A snapshot ready to restore: its directory and manifest, checked against the image it came from. */
export interface Snapshot {
  readonly name: string
  readonly dir: string
  readonly manifest: SnapshotManifest
  readonly image: GuestImage
  readonly statePath: string
  readonly ramPath: string
  readonly diskPath: string
}

/** A snapshot exists but must not be restored (stale image, other format, other devices, missing files). */
export class SnapshotMismatch extends Data.TaggedError("SnapshotMismatch")<{
  readonly snapshot: string
  readonly reason: string
}> {
  override get message(): string {
    return `snapshot "${this.snapshot}" cannot be restored: ${this.reason}; rebuild it with "paws image snapshot ${this.snapshot}"`
  }
}

export class SnapshotBuildError extends Data.TaggedError("SnapshotBuildError")<{
  readonly snapshot: string
  readonly message: string
  readonly detail?: string
}> {}

/** Snapshots live beside images (`<data>/snapshots/<name>/`), in the same name space as images. */
export const snapshotDirConfig = Config.all({
  dataDir: dataDirConfig,
  snapshotDir: nodeSettings.snapshotDir.config,
}).pipe(
  Config.map(({ dataDir, snapshotDir }) =>
    path.resolve(snapshotDir._tag === "Some" ? snapshotDir.value : path.join(dataDir, "snapshots"))
  ),
)

export const validSnapshotName = (name: string) => /^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)

export const readSnapshotManifest = async (dir: string): Promise<SnapshotManifest | undefined | Error> => {
  const text = await fs.readFile(path.join(dir, snapshotFiles.manifest), "utf8").catch(() => undefined)
  if (text === undefined) return undefined
  try {
    return Schema.decodeUnknownSync(SnapshotManifest)(JSON.parse(text))
  } catch (e) {
    return new Error(`unreadable manifest: ${(e as Error).message.split("\n")[0]}`)
  }
}

/** Why `manifest` must not be restored with `image` and the current driver; undefined when it may. */
export const mismatchReason = (
  manifest: SnapshotManifest,
  image: GuestImage,
  devices: ReadonlyArray<string>,
): string | undefined => {
  if (manifest.format !== snapshotFormat) return `format ${manifest.format}, this node restores ${snapshotFormat}`
  const a = image.manifest.artefacts
  if (manifest.image.inputHash !== image.manifest.inputHash) {
    return `image "${image.name}" was rebuilt since (${manifest.image.inputHash.slice(0, 12)} → ${
      image.manifest.inputHash.slice(0, 12)
    })`
  }
  if (
    manifest.image.rootfsSha256 !== a.rootfs.sha256 || manifest.image.kernelSha256 !== a.kernel.sha256 ||
    manifest.image.initrdSha256 !== a.initrd.sha256
  ) return `image "${image.name}" artefacts differ from the ones snapshotted`
  if (JSON.stringify(manifest.devices) !== JSON.stringify(devices)) return "the VM device layout changed since"
  return undefined
}
