import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { GuestImage } from "../image/GuestImage.ts"
import { hostMac } from "../network/Naming.ts"
import { deviceSignature } from "../vmm/MachineArgs.ts"
import type { MachineSpec } from "../vmm/MachineArgs.ts"
import { qemuVersion } from "../vmm/QemuProcess.ts"
import { snapshotFiles, snapshotFormat } from "./SnapshotManifest.ts"
import type { SnapshotManifest } from "./SnapshotManifest.ts"

/** The manifest of a snapshot whose files are complete in `buildDir`. */
export const describeSnapshot = (o: {
  readonly name: string
  readonly buildDir: string
  readonly image: GuestImage
  readonly spec: MachineSpec
  readonly setup: string | undefined
  readonly buildMs: Record<string, number>
}): Effect.Effect<SnapshotManifest> =>
  Effect.gen(function* () {
    const size = (f: string) =>
      Effect.promise(() => fs.stat(path.join(o.buildDir, f))).pipe(Effect.map((s) => ({ file: f, bytes: s.size })))
    const { image, spec } = o
    return {
      format: snapshotFormat,
      name: o.name,
      createdAt: new Date().toISOString(),
      image: {
        name: image.name,
        inputHash: image.manifest.inputHash,
        rootfsSha256: image.manifest.artefacts.rootfs.sha256,
        kernelSha256: image.manifest.artefacts.kernel.sha256,
        initrdSha256: image.manifest.artefacts.initrd.sha256,
      },
      memoryMB: spec.memoryMB,
      vcpus: spec.vcpus,
      accelerator: spec.accelerator,
      cmdline: spec.cmdline,
      devices: deviceSignature(spec),
      macPlan: { guestMac: spec.guestMac, hostMac },
      qemuVersion: yield* qemuVersion,
      setupSha256: createHash("sha256").update(o.setup ?? "").digest("hex"),
      files: {
        state: yield* size(snapshotFiles.state),
        ram: yield* size(snapshotFiles.ram),
        disk: yield* size(snapshotFiles.disk),
      },
      buildMs: o.buildMs,
    }
  })

/**
 * Makes a built snapshot the one named `manifest.name`: the source VM's leftovers removed, its
 * files read-only (clones only read them; the RAM file must never change again), the manifest
 * written, and the directory swapped in atomically for any older snapshot of that name.
 */
export const publishSnapshot = (snapshotsDir: string, buildDir: string, manifest: SnapshotManifest) =>
  Effect.promise(async () => {
    const file = (f: string) => path.join(buildDir, f)
    for (const f of ["qmp.sock", "ctl.sock", "qemu.log", "console.log"]) await fs.rm(file(f), { force: true })
    for (const f of [snapshotFiles.state, snapshotFiles.ram, snapshotFiles.disk]) await fs.chmod(file(f), 0o400)
    await fs.writeFile(file(snapshotFiles.manifest), `${JSON.stringify(manifest, null, 2)}\n`)
    const final = path.join(snapshotsDir, manifest.name)
    const old = path.join(snapshotsDir, `.old-${manifest.name}-${randomBytes(4).toString("hex")}`)
    await fs.rename(final, old).catch(() => undefined)
    await fs.rename(buildDir, final)
    await fs.rm(old, { recursive: true, force: true })
  })
