import { Cause, Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runHostCommand } from "../HostCommand.ts"

const source = fileURLToPath(new URL("./paws-nothp.c", import.meta.url))

/**
 * The argv prefix QEMU is started through: `paws-nothp` (paws-nothp.c, compiled here once per
 * source version into `cacheDir`), which turns transparent huge pages off for QEMU: ~4 MiB less
 * resident per VM under TCG, at no CPU cost (bench:density). Without gcc, or where the build
 * fails, QEMU starts directly (a warning says why) and VMs keep the huge pages.
 */
export const qemuLauncher = (cacheDir: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const text = yield* Effect.promise(() => fs.readFile(source))
    const out = path.join(cacheDir, `paws-nothp-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`)
    if (yield* Effect.promise(() => fs.access(out).then(() => true, () => false))) return [out]
    yield* Effect.promise(() => fs.mkdir(cacheDir, { recursive: true }))
    const tmp = `${out}.${randomBytes(4).toString("hex")}`
    yield* runHostCommand("gcc", ["-Os", "-s", "-o", tmp, source])
    yield* Effect.promise(() => fs.rename(tmp, out))
    return [out]
  }).pipe(
    Effect.catchCause((cause) => {
      const e = Cause.squash(cause)
      const why = typeof e === "object" && e !== null && "stderr" in e ? String(e.stderr).trim() : String(e)
      return Effect.logWarning(`QEMU keeps transparent huge pages (~4 MiB more per VM): no paws-nothp: ${why}`).pipe(
        Effect.as([]),
      )
    }),
  )
