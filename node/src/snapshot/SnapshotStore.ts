import { Context, Effect, Layer, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { ImageStore } from "../image/ImageStore.ts"
import { Vmm } from "../vmm/Vmm.ts"
import { deviceSignature } from "../vmm/MachineArgs.ts"
import {
  mismatchReason,
  readSnapshotManifest,
  snapshotDirConfig,
  snapshotFiles,
  SnapshotMismatch,
  validSnapshotName,
} from "./SnapshotManifest.ts"
import type { Snapshot, SnapshotManifest } from "./SnapshotManifest.ts"

/**
 * Finds snapshots by name (`<snapshots>/<name>/manifest.json`). A snapshot is handed out only
 * when its image still has the hashes it was made from, its files are whole, and the current
 * driver would build the identical machine; otherwise `SnapshotMismatch` says why.
 */
export class SnapshotStore extends Context.Service<SnapshotStore, {
  /** None when there is no snapshot of that name (the name may still be an image). */
  readonly find: (name: string) => Effect.Effect<Option.Option<Snapshot>, SnapshotMismatch>
  /** Every snapshot dir with a readable manifest (restorable or not; `find` says which). */
  readonly list: Effect.Effect<ReadonlyArray<{ readonly name: string; readonly manifest: SnapshotManifest }>>
  readonly remove: (name: string) => Effect.Effect<boolean>
  readonly dir: string
}>()("paws/snapshot/SnapshotStore") {
  static readonly layerNoDeps = Layer.effect(
    SnapshotStore,
    Effect.gen(function* () {
      const dir = yield* snapshotDirConfig
      const images = yield* ImageStore
      const vmm = yield* Vmm

      const find = Effect.fn("SnapshotStore.find")(function* (name: string) {
        if (!validSnapshotName(name)) return Option.none<Snapshot>()
        const snapDir = path.join(dir, name)
        const manifest = yield* Effect.promise(() => readSnapshotManifest(snapDir))
        if (manifest === undefined) return Option.none<Snapshot>()
        const refuse = (reason: string) => new SnapshotMismatch({ snapshot: name, reason })
        if (manifest instanceof Error) return yield* refuse(manifest.message)
        const image = yield* images.get(manifest.image.name).pipe(
          Effect.mapError(() => refuse(`its image "${manifest.image.name}" no longer exists`)),
        )
        const accelerator = yield* vmm.accelerator(image.kernelPath)
        if (accelerator !== manifest.accelerator) {
          return yield* refuse(`made under ${manifest.accelerator}, this node runs ${accelerator}`)
        }
        const devices = deviceSignature({ ...manifest, guestMac: manifest.macPlan.guestMac })
        const why = mismatchReason(manifest, image, devices)
        if (why !== undefined) return yield* refuse(why)
        for (const f of Object.values(manifest.files)) {
          const st = yield* Effect.promise(() => fs.stat(path.join(snapDir, f.file)).catch(() => undefined))
          if (st?.size !== f.bytes) return yield* refuse(`${f.file} is missing or truncated`)
        }
        return Option.some<Snapshot>({
          name,
          dir: snapDir,
          manifest,
          image,
          statePath: path.join(snapDir, snapshotFiles.state),
          ramPath: path.join(snapDir, snapshotFiles.ram),
          diskPath: path.join(snapDir, snapshotFiles.disk),
        })
      })

      const list = Effect.promise(async () => {
        const names = await fs.readdir(dir).catch(() => [] as Array<string>)
        const out: Array<{ name: string; manifest: SnapshotManifest }> = []
        for (const name of names.filter(validSnapshotName).sort()) {
          const manifest = await readSnapshotManifest(path.join(dir, name))
          if (manifest !== undefined && !(manifest instanceof Error)) out.push({ name, manifest })
        }
        return out
      })

      // Clones that are running keep their mapped files (unlinked inodes) until they stop.
      const remove = (name: string) =>
        Effect.promise(async () => {
          if (!validSnapshotName(name)) return false
          const snapDir = path.join(dir, name)
          const exists = await fs.stat(snapDir).then(() => true, () => false)
          await fs.rm(snapDir, { recursive: true, force: true })
          return exists
        })

      return SnapshotStore.of({ find, list, remove, dir })
    }),
  )
}
