import { Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { HostCommand } from "../HostCommand.ts"
import { netnsProcesses } from "../network/NetnsProcesses.ts"
import { NodeConfig, nodeSettings } from "../NodeConfig.ts"
import { prepareProxyLaunch } from "../proxy/ProxyLaunch.ts"
import { spawnProxyProcess } from "../proxy/ProxyProcess.ts"
import { trackedProxy } from "../NodeTeardown.ts"
import type { ProxyProcess, ProxyStart } from "../proxy/ProxyProcess.ts"
import { ProxyStarter } from "../proxy/ProxyStarter.ts"

/** Waiting proxies carry this label (not a session's): they belong to no session yet. */
export const warmProxyEnvVar = "PAWS_POOL_ID"

/** Kills waiting proxies a previous node process left in this netns (`PAWS_POOL_ID` label). */
export const reconcileWarmProxies = (netns: Option.Option<string>): Effect.Effect<ReadonlyArray<number>> =>
  Effect.map(
    netnsProcesses(netns),
    (processes) =>
      processes.filter((p) => p.env.some((kv) => kv.startsWith(`${warmProxyEnvVar}=`))).flatMap((p) => {
        try {
          process.kill(p.pid, "SIGKILL")
          return [p.pid]
        } catch {
          return [] // exited meanwhile
        }
      }),
  )

/**
 * Warm proxies: a proxy's start is mostly Node loading its program and making its CA (hundreds of
 * ms on a busy 2-core host), none of it session-specific, so the node keeps `PAWS_NODE_WARM_POOL`
 * proxies spawned and waiting on stdin (the config, with credentials, only ever arrives over that
 * pipe). A `ProxyStarter`: `start` takes a waiting proxy (each handed out once: removed before
 * use), or spawns one when none waits, and refills in the background. Waiting proxies carry a pool
 * label (`PAWS_POOL_ID`); the pool's scope stops them on shutdown, and a starting pool first kills
 * any a previous node process left behind (they also exit by themselves when the node dies: their
 * stdin reaches EOF).
 */
export const WarmProxyPool = Layer.effect(
  ProxyStarter,
  Effect.gen(function* () {
    const size = yield* nodeSettings.warmProxies.config
    const cmd = yield* HostCommand
    const { proxyUpstream } = yield* NodeConfig
    const idle: Array<ProxyProcess> = []
    let closing = false

    const spawnWaiting = (): ProxyProcess => {
      const p = spawnProxyProcess(cmd.prefix, { [warmProxyEnvVar]: randomUUID() })
      p.child.on("exit", () => {
        const i = idle.indexOf(p)
        if (i >= 0) idle.splice(i, 1) // died while idle: never handed out
      })
      return p
    }

    const refill = Effect.sync(() => {
      if (closing) return
      while (idle.length < size) idle.push(spawnWaiting())
    })

    yield* prepareProxyLaunch
    const stale = yield* reconcileWarmProxies(cmd.netns)
    if (stale.length > 0) yield* Effect.logWarning(`proxy pool: killed ${stale.length} stale pooled proxies`)
    yield* refill
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closing = true
        return Effect.forEach(idle.splice(0), (p) => p.stop, { concurrency: "unbounded", discard: true })
      })
    )

    const start = Effect.fn("WarmProxyPool.start")(function* (options: ProxyStart) {
      const p = yield* trackedProxy(() => idle.shift() ?? spawnWaiting(), (p) => p.stop)
      yield* refill.pipe(Effect.delay(0), Effect.forkDetach)
      return yield* p.configure(options, proxyUpstream)
    })
    return ProxyStarter.of({ start, idle: Effect.sync(() => idle.length) })
  }),
)
