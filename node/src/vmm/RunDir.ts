import { Effect } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { runHostCommand } from "../HostCommand.ts"
import { VmStartError } from "./Vmm.ts"

/** `<runRoot>/<name>/`, private to root, removed (last) when the scope closes. */
export const makeRunDir = (
  sessionId: string,
  runRoot: string,
  name: string,
): Effect.Effect<string, VmStartError, Scope.Scope> => {
  const runDir = path.join(runRoot, name)
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        await fs.mkdir(runRoot, { recursive: true })
        await fs.mkdir(runDir, { mode: 0o700 })
        return runDir
      },
      catch: (e) => new VmStartError({ sessionId, message: `cannot create ${runDir}: ${(e as Error).message}` }),
    }),
    () => Effect.promise(() => fs.rm(runDir, { recursive: true, force: true })),
  )
}

/** A qcow2 copy-on-write overlay over `base` (the image's raw root, or a snapshot's qcow2 disk). */
export const createOverlay = (sessionId: string, base: string, baseFormat: "raw" | "qcow2", overlayPath: string) =>
  runHostCommand("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, overlayPath]).pipe(
    Effect.mapError((e) => new VmStartError({ sessionId, message: "qemu-img create failed", detail: e.stderr })),
  )
