import { Context, Effect, Layer, Scope } from "effect"
import { HostCommand } from "../HostCommand.ts"
import { sessionEnvVar } from "../network/Naming.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { prepareProxyLaunch } from "./ProxyLaunch.ts"
import { spawnProxyProcess } from "./ProxyProcess.ts"
import { trackedProxy } from "../NodeTeardown.ts"
import type { ProxyFailed, ProxyStart, RunningProxy } from "./ProxyProcess.ts"

export { ProxyFailed } from "./ProxyProcess.ts"
export type { ProxyStart, RunningProxy } from "./ProxyProcess.ts"

/**
 * Starts one session's proxy in the scope (stopped when it closes). Two implementations:
 * `ProxyStarter.direct` spawns a proxy per session; `WarmProxyPool` (the node's) hands out one of
 * the proxies it keeps waiting and spawns only when it has none.
 */
export class ProxyStarter extends Context.Service<ProxyStarter, {
  readonly start: (options: ProxyStart) => Effect.Effect<RunningProxy, ProxyFailed, Scope.Scope>
  /** Proxies started and waiting for a session (0 for `direct`). */
  readonly idle: Effect.Effect<number>
}>()("paws/node/proxy/ProxyStarter") {
  /** A fresh proxy per session, labelled with its session id (the reconciler finds orphans by it). */
  static readonly direct = Layer.effect(
    ProxyStarter,
    Effect.gen(function* () {
      const cmd = yield* HostCommand
      const { proxyUpstream } = yield* NodeConfig
      yield* prepareProxyLaunch
      return ProxyStarter.of({
        start: (options) =>
          trackedProxy(() => spawnProxyProcess(cmd.prefix, { [sessionEnvVar]: options.sessionId }), (p) => p.stop).pipe(
            Effect.flatMap((p) => p.configure(options, proxyUpstream)),
            Effect.tap((p) => Effect.logDebug(`proxy ${p.pid} ready for session ${options.sessionId}`)),
          ),
        idle: Effect.succeed(0),
      })
    }),
  )
}
