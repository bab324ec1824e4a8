import { Context, Data, Deferred, Effect, Layer, Scope } from "effect"
import type { CredentialRule, ProxyAuditEvent, ProxyPorts } from "@paws/core"
import { decodeProxyMessageLine, encodeProxyConfigLine, type ProxyConfig } from "@paws/core"
import type { ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import { HostCommand } from "../network/HostCommand.ts"
import { sessionEnvVar } from "../network/Naming.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { Option } from "effect"
import { spawnProxy } from "./ProxySandbox.ts"

export class ProxyFailed extends Data.TaggedError("ProxyFailed")<{ readonly reason: string }> {
  override get message(): string {
    return `proxy: ${this.reason}`
  }
}

export interface ProxyStart {
  readonly sessionId: string
  /** The slot's host-side address: the proxy listens there and DNS answers carry it. */
  readonly hostIp: string
  readonly allowOut: ReadonlyArray<string>
  readonly credentials: Record<string, CredentialRule>
  readonly onAudit: (event: ProxyAuditEvent) => void
}

export interface RunningProxy {
  readonly pid: number
  readonly caCertificatePem: string
  readonly ports: ProxyPorts
  /** Completes if the proxy exits on its own (the session cannot go on without it). */
  readonly exited: Deferred.Deferred<number | null>
}

const readyTimeoutMs = 15_000
const stopGraceMs = 3_000

/**
 * Runs one `paws proxy` per VM in the node's netns, unprivileged (ProxySandbox.ts): config (with credential values) goes down
 * stdin, never argv or env; the first stdout line must be `ready` with the per-VM CA; later
 * lines are audit events. Released by closing stdin, then SIGKILL after a grace period.
 */
export class ProxySupervisor extends Context.Service<ProxySupervisor, {
  readonly start: (options: ProxyStart) => Effect.Effect<RunningProxy, ProxyFailed, Scope.Scope>
}>()("paws/node/proxy/ProxySupervisor") {
  static readonly layerNoDeps = Layer.effect(
    ProxySupervisor,
    Effect.gen(function* () {
      const cmd = yield* HostCommand
      const { proxyUpstream } = yield* NodeConfig

      const stop = (child: ChildProcess, exited: Deferred.Deferred<number | null>) =>
        Effect.gen(function* () {
          child.stdin?.end()
          child.kill("SIGTERM")
          const done = yield* Deferred.await(exited).pipe(Effect.timeoutOption(stopGraceMs))
          if (Option.isNone(done)) {
            yield* Effect.logWarning(`proxy ${child.pid} ignored SIGTERM; killing it`)
            child.kill("SIGKILL")
            yield* Deferred.await(exited)
          }
        })

      const start = Effect.fn("ProxySupervisor.start")(function* (options: ProxyStart) {
        const config: ProxyConfig = {
          listen: { address: options.hostIp, https: 0, http: 0, dns: 0 },
          dnsAnswer: options.hostIp,
          allowOut: options.allowOut,
          credentials: options.credentials,
          ...(Option.isSome(proxyUpstream) ? { upstream: proxyUpstream.value } : {}),
        }
        const exited = yield* Deferred.make<number | null>()
        const ready = yield* Deferred.make<Omit<RunningProxy, "exited">, ProxyFailed>()
        const child = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const child = spawnProxy(cmd.prefix, { [sessionEnvVar]: options.sessionId })
            child.on("error", (e) => Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: String(e) }))))
            child.on("exit", (code) => {
              Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: `exited ${code} before ready` })))
              Deferred.doneUnsafe(exited, Effect.succeed(code))
            })
            child.stdin!.on("error", () => {})
            child.stdin!.write(encodeProxyConfigLine(config))
            createInterface({ input: child.stdout! }).on("line", (line) => {
              let message
              try {
                message = decodeProxyMessageLine(line)
              } catch {
                return // not ours to interpret; the contract says stdout is NDJSON only
              }
              if (message._tag === "ready") {
                const { pid, caCertificatePem, ports } = message
                Deferred.doneUnsafe(ready, Effect.succeed({ pid, caCertificatePem, ports }))
              } else if (message._tag === "audit") {
                options.onAudit(message.event)
              } else if (message.fatal) {
                Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: message.message })))
              }
            })
            return child
          }),
          (child) => stop(child, exited),
        )
        const started = yield* Deferred.await(ready).pipe(
          Effect.timeoutOrElse({
            duration: readyTimeoutMs,
            orElse: () => Effect.fail(new ProxyFailed({ reason: `not ready within ${readyTimeoutMs} ms` })),
          }),
        )
        yield* Effect.logDebug(`proxy ${child.pid} ready for session ${options.sessionId}`)
        return { ...started, exited }
      })
      return ProxySupervisor.of({ start })
    }),
  )
  static readonly layer = ProxySupervisor.layerNoDeps.pipe(Layer.provide(HostCommand.layer))
}
