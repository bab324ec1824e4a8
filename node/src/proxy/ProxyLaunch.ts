import { Effect } from "effect"
import { proxyProgram } from "@paws/proxy"
import { buildProxySnapshot } from "@paws/proxy/ProxySnapshotBuild"

/**
 * What `node` runs to start a proxy: the proxy's startup snapshot when this node could build one
 * (`--snapshot-blob <blob>`: bundled, already initialised, about a quarter of the CPU from spawn to
 * ready and half the private memory of running from source), else the proxy's source. Built once
 * per node start before the first proxy is spawned (reused while the sources and Node are
 * unchanged); a failed build is logged and proxies run from source, as before.
 */
let snapshotBlob: string | undefined

export const proxyLaunchArgv = (): ReadonlyArray<string> =>
  snapshotBlob === undefined ? [proxyProgram] : ["--snapshot-blob", snapshotBlob]

/**
 * glibc's malloc returning freed memory to the system sooner and keeping fewer arenas: ~2 MiB less
 * resident per idle proxy (the snapshot's blob is read into a buffer that is freed after start).
 */
export const proxyMallocEnv: Readonly<Record<string, string>> = {
  GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=262144:glibc.malloc.trim_threshold=262144:glibc.malloc.arena_max=2",
}

interface Prepared {
  readonly blob?: string
  readonly error?: unknown
}
let prepared: Promise<Prepared> | undefined

export const prepareProxyLaunch: Effect.Effect<void> = Effect.promise(() =>
  prepared ??= buildProxySnapshot().then(
    (blob): Prepared => (blob === undefined ? {} : { blob }),
    (error: unknown): Prepared => ({ error }),
  )
).pipe(
  Effect.flatMap(({ blob, error }) => {
    snapshotBlob = blob
    return error === undefined
      ? Effect.void
      : Effect.logWarning(`proxy startup snapshot not built, proxies run from source: ${String(error)}`)
  }),
)

/** Whether a command line is a proxy's, however it was launched (from source, or from the startup snapshot). */
export const isProxyArgv = (argv: ReadonlyArray<string>): boolean =>
  argv.some((a) => a === proxyProgram || a.endsWith("proxy/src/main.ts") || /\/proxy-[0-9a-f]{16}\.blob$/.test(a))
