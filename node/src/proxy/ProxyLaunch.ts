import { Effect } from "effect"
import { existsSync, utimesSync } from "node:fs"
import { proxyProgram } from "@paws/proxy"
import { buildProxySnapshot } from "@paws/proxy/ProxySnapshotBuild"

export interface ProxyLaunch {
  /** Builds (or finds) the startup snapshot; once, unless the blob went missing since. */
  readonly prepare: Effect.Effect<void>
  /** What `node` runs to start a proxy now. */
  readonly argv: () => ReadonlyArray<string>
}

/**
 * What `node` runs to start a proxy: the proxy's startup snapshot when this node could build one
 * (`--snapshot-blob <blob>`: bundled, already initialised, about a quarter of the CPU from spawn to
 * ready and half the private memory of running from source), else the proxy's source. Built once
 * per node start before the first proxy is spawned (reused while the sources and Node are
 * unchanged); a failed build is logged and proxies run from source, as before.
 *
 * The blob is marked used (its mtime) at most once a minute: a build of newer sources (an upgrade, a
 * second node sharing the cache) removes blobs unused for an hour, not this node's. Should it be gone
 * anyway, proxies start from source and the next `prepare` builds it again.
 */
export const makeProxyLaunch = (build: () => Promise<string | undefined>): ProxyLaunch => {
  let blob: string | undefined
  let touchedAt = 0
  type Prepared = { readonly blob?: string; readonly error?: unknown }
  let prepared: Promise<Prepared> | undefined
  const prepare = Effect.promise(() =>
    prepared ??= build().then(
      (blob): Prepared => (blob === undefined ? {} : { blob }),
      (error: unknown): Prepared => ({ error }),
    )
  ).pipe(
    Effect.flatMap((p) => {
      blob = p.blob
      touchedAt = 0
      return p.error === undefined
        ? Effect.void
        : Effect.logWarning(`proxy startup snapshot not built, proxies run from source: ${String(p.error)}`)
    }),
  )
  const argv = (): ReadonlyArray<string> => {
    const current = blob
    if (current === undefined) return [proxyProgram]
    if (!existsSync(current)) {
      blob = undefined
      prepared = undefined
      return [proxyProgram]
    }
    const now = Date.now()
    if (now - touchedAt > 60_000) {
      touchedAt = now
      try {
        utimesSync(current, now / 1000, now / 1000)
      } catch {
        // a read-only cache: the blob is still there to start from
      }
    }
    return ["--snapshot-blob", current]
  }
  return { prepare, argv }
}

/** The node's one launch (the blob under node_modules/.cache, shared by its proxy pool and starter). */
const nodeLaunch = makeProxyLaunch(() => buildProxySnapshot())
export const prepareProxyLaunch: Effect.Effect<void> = nodeLaunch.prepare
export const proxyLaunchArgv = (): ReadonlyArray<string> => nodeLaunch.argv()

/**
 * glibc's malloc returning freed memory to the system sooner and keeping fewer arenas: ~2 MiB less
 * resident per idle proxy.
 */
export const proxyMallocEnv: Readonly<Record<string, string>> = {
  GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=262144:glibc.malloc.trim_threshold=262144:glibc.malloc.arena_max=2",
}

/** Whether a command line is a proxy's, however it was launched (from source, or from the startup snapshot). */
export const isProxyArgv = (argv: ReadonlyArray<string>): boolean =>
  argv.some((a) => a === proxyProgram || a.endsWith("proxy/src/main.ts") || /\/proxy-[0-9a-f]{16}\.blob$/.test(a))
