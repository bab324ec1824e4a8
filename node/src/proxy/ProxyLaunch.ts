import { Effect } from "effect"
import { existsSync, utimesSync } from "node:fs"
import { proxyProgram } from "@paws/proxy"
import { buildProxyBundle, proxyLoader } from "@paws/proxy/ProxyBundleBuild"

export interface ProxyLaunch {
  /** Builds (or finds) the proxy's bundle; once, unless the bundle went missing since. */
  readonly prepare: Effect.Effect<void>
  /** What `node` runs to start a proxy now. */
  readonly argv: () => ReadonlyArray<string>
}

/**
 * What `node` runs to start a proxy: the proxy's bundle with its code cache when this node could
 * build one (`ProxyLoader.cjs <bundle>`: ~a third of the CPU from spawn to ready and less than half
 * the private memory of running from source), else the proxy's source. Built once per node start
 * before the first proxy is spawned (reused while the sources and Node are unchanged); a failed
 * build is logged and proxies run from source, as before.
 *
 * The bundle is marked used (its mtime) at most once a minute: a build of newer sources (an upgrade,
 * a second node sharing the cache) removes builds unused for an hour, not this node's. Should it be
 * gone anyway, proxies start from source and the next `prepare` builds it again.
 */
export const makeProxyLaunch = (build: () => Promise<string | undefined>): ProxyLaunch => {
  let bundle: string | undefined
  let touchedAt = 0
  type Prepared = { readonly bundle?: string; readonly error?: unknown }
  let prepared: Promise<Prepared> | undefined
  const prepare = Effect.promise(() =>
    prepared ??= build().then(
      (bundle): Prepared => (bundle === undefined ? {} : { bundle }),
      (error: unknown): Prepared => ({ error }),
    )
  ).pipe(
    Effect.flatMap((p) => {
      bundle = p.bundle
      touchedAt = 0
      return p.error === undefined
        ? Effect.void
        : Effect.logWarning(`proxy bundle not built, proxies run from source: ${String(p.error)}`)
    }),
  )
  const argv = (): ReadonlyArray<string> => {
    const current = bundle
    if (current === undefined) return [proxyProgram]
    if (!existsSync(current)) {
      bundle = undefined
      prepared = undefined
      return [proxyProgram]
    }
    const now = Date.now()
    if (now - touchedAt > 60_000) {
      touchedAt = now
      try {
        utimesSync(current, now / 1000, now / 1000)
      } catch {
        // a read-only cache: the bundle is still there to start from
      }
    }
    return [proxyLoader, current]
  }
  return { prepare, argv }
}

/** The node's one launch (the bundle under node_modules/.cache, shared by its proxy pool and starter). */
const nodeLaunch = makeProxyLaunch(() => buildProxyBundle())
export const prepareProxyLaunch: Effect.Effect<void> = nodeLaunch.prepare
export const proxyLaunchArgv = (): ReadonlyArray<string> => nodeLaunch.argv()

/**
 * glibc's malloc returning freed memory to the system sooner and keeping fewer arenas: ~2 MiB less
 * resident per idle proxy.
 */
export const proxyMallocEnv: Readonly<Record<string, string>> = {
  GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=262144:glibc.malloc.trim_threshold=262144:glibc.malloc.arena_max=2",
}

/** Whether a command line is a proxy's, however it was launched (from source, or from its bundle). */
export const isProxyArgv = (argv: ReadonlyArray<string>): boolean =>
  argv.some((a) =>
    a === proxyProgram || a.endsWith("proxy/src/main.ts") || a.endsWith("proxy/src/ProxyLoader.cjs") ||
    /\/proxy-[0-9a-f]{16}\.blob$/.test(a) // a proxy of an earlier paws, started from its snapshot
  )
