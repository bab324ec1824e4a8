import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"

/** sha256 of a file, streamed (root filesystems are hundreds of MiB). */
export const sha256File = (p: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash("sha256")
    createReadStream(p).on("data", (d) => h.update(d)).on("error", reject).on("end", () => resolve(h.digest("hex")))
  })
