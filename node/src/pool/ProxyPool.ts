import { Context, Deferred, Effect, Layer, Option, Scope } from "effect"
import { decodeProxyMessageLine, encodeProxyConfigLine, type ProxyConfig } from "@paws/core"
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { readdir, readFile, readlink, stat } from "node:fs/promises"
import { createInterface } from "node:readline"
import { HostCommand } from "../network/HostCommand.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { spawnProxy } from "../proxy/ProxySandbox.ts"
import { ProxyFailed } from "../proxy/ProxySupervisor.ts"
import type { ProxyStart, RunningProxy } from "../proxy/ProxySupervisor.ts"
import { nodeSettings } from "../NodeConfig.ts"

const readyTimeoutMs = 15_000
const stopGraceMs = 3_000

/** `PAWS_NODE_WARM_POOL`: proxies kept started and waiting for their session's config (0 = none). */
export const warmPoolConfig = nodeSettings.warmProxies.config

/** Idle pooled proxies carry this label (not a session's): they belong to no session yet. */
export const poolEnvVar = "PAWS_POOL_ID"

/** Kills pooled proxies a previous node process left in this netns (`PAWS_POOL_ID` label). */
export const reconcilePool = (netns: Option.Option<string>): Effect.Effect<ReadonlyArray<number>> =>
  Effect.promise(async () => {
    const ns = Option.isSome(netns)
      ? `net:[${(await stat(`/run/netns/${netns.value}`)).ino}]`
      : await readlink("/proc/self/ns/net")
    const killed: Array<number> = []
    for (const entry of await readdir("/proc")) {
      const pid = Number(entry)
      if (!Number.isInteger(pid) || pid === process.pid) continue
      try {
        if ((await readlink(`/proc/${pid}/ns/net`)) !== ns) continue
        const env = (await readFile(`/proc/${pid}/environ`)).toString().split("\0")
        if (!env.some((kv) => kv.startsWith(`${poolEnvVar}=`))) continue
        process.kill(pid, "SIGKILL")
        killed.push(pid)
      } catch {
        // exited meanwhile, or not ours to read
      }
    }
    return killed
  })

/** A proxy process that has loaded its program and blocks reading its config line from stdin. */
interface Waiting {
  readonly child: ChildProcess
  readonly exited: Deferred.Deferred<number | null>
  readonly lines: Array<string>
  onLine: ((line: string) => void) | undefined
}

/**
 * Warm proxies: a proxy's start is mostly Node loading its program (about a second on a busy
 * 2-core host), none of it session-specific, so the pool keeps `size` proxies spawned and
 * waiting on stdin (the config, with credentials, only ever arrives over that pipe). `start` has
 * ProxySupervisor's contract; it takes a waiting proxy (each is handed out once: removed from the
 * pool before use), or spawns one when the pool is empty, and refills in the background. Pooled
 * proxies carry a pool label (`PAWS_POOL_ID`); the pool's scope stops them on shutdown, and a
 * starting pool first kills any a previous node process left behind (the proxies also exit by
 * themselves when the node dies: their stdin reaches EOF).
 */
export class ProxyPool extends Context.Service<ProxyPool, {
  readonly start: (options: ProxyStart) => Effect.Effect<RunningProxy, ProxyFailed, Scope.Scope>
  readonly idle: Effect.Effect<number>
  readonly size: number
}>()("paws/node/pool/ProxyPool") {
  static readonly layerNoDeps = Layer.effect(
    ProxyPool,
    Effect.gen(function* () {
      const size = yield* warmPoolConfig
      const cmd = yield* HostCommand
      const { proxyUpstream } = yield* NodeConfig
      const idle: Array<Waiting> = []
      let closing = false

      const spawnWaiting = (): Waiting => {
        const child = spawnProxy(cmd.prefix, { [poolEnvVar]: randomUUID() })
        const exited = Deferred.makeUnsafe<number | null>()
        const w: Waiting = { child, exited, lines: [], onLine: undefined }
        child.on("error", () => Deferred.doneUnsafe(exited, Effect.succeed(null)))
        child.on("exit", (code) => {
          Deferred.doneUnsafe(exited, Effect.succeed(code))
          const i = idle.indexOf(w)
          if (i >= 0) idle.splice(i, 1) // died while idle: never handed out
        })
        child.stdin!.on("error", () => {})
        createInterface({ input: child.stdout! }).on("line", (line) => (w.onLine ? w.onLine(line) : w.lines.push(line)))
        return w
      }

      const stop = (w: Waiting) =>
        Effect.gen(function* () {
          w.child.stdin?.end()
          w.child.kill("SIGTERM")
          const done = yield* Deferred.await(w.exited).pipe(Effect.timeoutOption(stopGraceMs))
          if (Option.isNone(done)) {
            w.child.kill("SIGKILL")
            yield* Deferred.await(w.exited)
          }
        })

      const refill = Effect.sync(() => {
        if (closing) return
        while (idle.length < size) idle.push(spawnWaiting())
      })

      const stale = yield* reconcilePool(cmd.netns)
      if (stale.length > 0) yield* Effect.logWarning(`proxy pool: killed ${stale.length} stale pooled proxies`)
      yield* refill
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          closing = true
          return Effect.forEach(idle.splice(0), stop, { concurrency: "unbounded", discard: true })
        })
      )

      const start = Effect.fn("ProxyPool.start")(function* (options: ProxyStart) {
        const config: ProxyConfig = {
          listen: { address: options.hostIp, https: 0, http: 0, dns: 0 },
          dnsAnswer: options.hostIp,
          allowOut: options.allowOut,
          credentials: options.credentials,
          ...(Option.isSome(proxyUpstream) ? { upstream: proxyUpstream.value } : {}),
        }
        const ready = yield* Deferred.make<Omit<RunningProxy, "exited">, ProxyFailed>()
        const w = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const w = idle.shift() ?? spawnWaiting()
            const handle = (line: string) => {
              let message
              try {
                message = decodeProxyMessageLine(line)
              } catch {
                return
              }
              if (message._tag === "ready") {
                const { pid, caCertificatePem, ports } = message
                Deferred.doneUnsafe(ready, Effect.succeed({ pid, caCertificatePem, ports }))
              } else if (message._tag === "audit") options.onAudit(message.event)
              else if (message.fatal) {
                Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: message.message })))
              }
            }
            for (const line of w.lines.splice(0)) handle(line)
            w.onLine = handle
            w.child.once(
              "exit",
              (code) =>
                Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: `exited ${code} before ready` }))),
            )
            if (w.child.exitCode !== null || w.child.signalCode !== null) {
              Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: "pooled proxy had exited" })))
            }
            w.child.stdin!.write(encodeProxyConfigLine(config))
            return w
          }),
          stop,
        )
        yield* refill.pipe(Effect.delay(0), Effect.forkDetach)
        const started = yield* Deferred.await(ready).pipe(
          Effect.timeoutOrElse({
            duration: readyTimeoutMs,
            orElse: () => Effect.fail(new ProxyFailed({ reason: `not ready within ${readyTimeoutMs} ms` })),
          }),
        )
        return { ...started, exited: w.exited }
      })
      return ProxyPool.of({ start, idle: Effect.sync(() => idle.length), size })
    }),
  )
}
