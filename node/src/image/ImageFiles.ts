import { Effect } from "effect"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { readManifest, toGuestImage } from "./GuestImage.ts"

/** sha256 of a file, streamed (root filesystems are hundreds of MiB). */
export const sha256File = (p: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash("sha256")
    createReadStream(p).on("data", (d) => h.update(d)).on("error", reject).on("end", () => resolve(h.digest("hex")))
  })

/** The image already in place when its manifest carries this input hash and its files are whole. */
export const readCached = (dir: string, inputHash: string) =>
  Effect.promise(async () => {
    const manifest = await readManifest(dir)
    if (manifest?.inputHash !== inputHash) return undefined
    for (const a of Object.values(manifest.artefacts)) {
      const st = await fs.stat(path.join(dir, a.file)).catch(() => undefined)
      if (st?.size !== a.bytes) return undefined
    }
    return toGuestImage(dir, manifest)
  })
