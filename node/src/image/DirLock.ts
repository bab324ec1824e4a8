import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/**
 * Cross-process mutual exclusion by `mkdir` (atomic), holder pid inside. A lock whose holder
 * is dead is stale and taken over, so a crashed build never wedges later ones.
 */
export const withDirLock = <A, E, R>(
  lockDir: string,
  body: Effect.Effect<A, E, R>,
  timeoutMs = 15 * 60_000,
): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.promise(() => acquire(lockDir, timeoutMs)),
    () => body,
    () => Effect.promise(() => fs.rm(lockDir, { recursive: true, force: true })),
  )

const acquire = async (lockDir: string, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  await fs.mkdir(path.dirname(lockDir), { recursive: true })
  for (;;) {
    try {
      await fs.mkdir(lockDir)
      await fs.writeFile(path.join(lockDir, "pid"), String(process.pid))
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    }
    const pid = Number(await fs.readFile(path.join(lockDir, "pid"), "utf8").catch(() => "0"))
    if (pid > 0 && !alive(pid)) await fs.rm(lockDir, { recursive: true, force: true })
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockDir}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}
