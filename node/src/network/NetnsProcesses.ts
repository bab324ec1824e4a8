import { Effect, Option } from "effect"
import { readdir, readFile, readlink, stat } from "node:fs/promises"

/** A process in the node's network namespace, as /proc shows it. */
export interface NetnsProcess {
  readonly pid: number
  readonly env: ReadonlyArray<string>
  /** argv, read on demand (most callers decide by env alone). */
  readonly argv: () => Promise<ReadonlyArray<string>>
}

const netnsInode = async (netns: Option.Option<string>): Promise<string> =>
  Option.isSome(netns) ? `net:[${(await stat(`/run/netns/${netns.value}`)).ino}]` : await readlink("/proc/self/ns/net")

/**
 * Every process (but this one) in `netns` (or the current namespace): how the node finds what it
 * labelled (proxies by env, QEMU by its `-name`) after a crash, when it holds no handles to them.
 */
export const netnsProcesses = (netns: Option.Option<string>): Effect.Effect<ReadonlyArray<NetnsProcess>> =>
  Effect.promise(async () => {
    const ns = await netnsInode(netns)
    const found: Array<NetnsProcess> = []
    for (const entry of await readdir("/proc")) {
      const pid = Number(entry)
      if (!Number.isInteger(pid) || pid === process.pid) continue
      try {
        if ((await readlink(`/proc/${pid}/ns/net`)) !== ns) continue
        const env = (await readFile(`/proc/${pid}/environ`)).toString().split("\0")
        const argv = async () => (await readFile(`/proc/${pid}/cmdline`)).toString().split("\0")
        found.push({ pid, env, argv })
      } catch {
        // exited meanwhile, a kernel thread, or not ours to read
      }
    }
    return found
  })
