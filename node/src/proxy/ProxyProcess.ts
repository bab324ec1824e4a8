import { Data, Deferred, Effect, Option } from "effect"
import type { CredentialRule, LlmExchange, ProxyAuditEvent, ProxyPorts } from "@paws/core"
import {
  decodeProxyMessageLine,
  encodeProxyConfigLine,
  encodeProxyDecisionLine,
  type ProxyConfig,
  type ProxyUpstream,
} from "@paws/core"
import type { ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import { spawnProxy } from "./ProxySandbox.ts"

export class ProxyFailed extends Data.TaggedError("ProxyFailed")<{ readonly reason: string }> {
  override get message(): string {
    return `proxy: ${this.reason}`
  }
}

/** What one session's proxy needs. */
export interface ProxyStart {
  readonly sessionId: string
  /** The slot's host-side address: the proxy listens there and DNS answers carry it. */
  readonly hostIp: string
  readonly allowOut: ReadonlyArray<string>
  readonly credentials: Record<string, CredentialRule>
  readonly onAudit: (event: ProxyAuditEvent) => void
  /** Record LLM exchanges (memory sessions): each body capped at `maxBytes`, handed to `onExchange`. */
  readonly llmHistory?: { readonly maxBytes: number; readonly onExchange: (exchange: LlmExchange) => void }
  /** The session's MCP gateway (McpGateway) and the servers it serves, when it may use MCP servers. */
  readonly mcpGateway?: { readonly socketPath: string; readonly servers: ReadonlyArray<string> } | undefined
  /** Requests the proxy holds for a human's decision (EgressApproval rules), and for how long. */
  readonly approvals?: ReadonlyArray<string> | undefined
  readonly approvalTimeoutMs?: number | undefined
  /** A request is held: ask a human, then call `decide` on the running proxy. */
  readonly onApproval?: (held: EgressHeld) => void
}

export interface EgressHeld {
  readonly requestId: string
  readonly rule: string
  readonly host: string
  readonly method: string
  readonly path: string
}

export interface RunningProxy {
  readonly pid: number
  readonly caCertificatePem: string
  readonly ports: ProxyPorts
  /** Completes if the proxy exits on its own (the session cannot go on without it). */
  readonly exited: Deferred.Deferred<number | null>
  /** Releases (approve) or refuses a held request; unknown ids are ignored by the proxy. */
  readonly decide: (requestId: string, approve: boolean) => void
}

const readyTimeoutMs = 15_000
const stopGraceMs = 3_000

/**
 * One `paws proxy` process, unprivileged (ProxySandbox), speaking the stdio protocol of
 * core/ProxyConfig: spawned (it loads its program and makes its CA, then blocks reading its
 * config line), configured once for one session (config with credential values down stdin, never
 * argv or env; the first stdout line must be `ready`, later ones are audit events), stopped by
 * closing stdin, SIGTERM, then SIGKILL after a grace period. Lines that arrive before `configure`
 * are kept for it.
 */
export interface ProxyProcess {
  readonly child: ChildProcess
  readonly exited: Deferred.Deferred<number | null>
  readonly running: () => boolean
  readonly configure: (
    start: ProxyStart,
    upstream: Option.Option<ProxyUpstream>,
  ) => Effect.Effect<RunningProxy, ProxyFailed>
  readonly stop: Effect.Effect<void>
}

export const spawnProxyProcess = (netnsPrefix: ReadonlyArray<string>, label: Record<string, string>): ProxyProcess => {
  const child = spawnProxy(netnsPrefix, label)
  const exited = Deferred.makeUnsafe<number | null>()
  const early: Array<string> = []
  let onLine: ((line: string) => void) | undefined
  child.on("error", () => Deferred.doneUnsafe(exited, Effect.succeed(null)))
  child.on("exit", (code) => Deferred.doneUnsafe(exited, Effect.succeed(code)))
  child.stdin!.on("error", () => {})
  createInterface({ input: child.stdout! }).on("line", (line) => (onLine ? onLine(line) : early.push(line)))
  const running = () => child.exitCode === null && child.signalCode === null

  const configure = (start: ProxyStart, upstream: Option.Option<ProxyUpstream>) =>
    Effect.gen(function* () {
      const config: ProxyConfig = {
        listen: { address: start.hostIp, https: 0, http: 0, dns: 0 },
        dnsAnswer: start.hostIp,
        allowOut: start.allowOut,
        credentials: start.credentials,
        ...(Option.isSome(upstream) ? { upstream: upstream.value } : {}),
        ...(start.llmHistory === undefined ? {} : { llmHistory: { maxBytes: start.llmHistory.maxBytes } }),
        ...(start.mcpGateway === undefined ? {} : { mcpGateway: start.mcpGateway }),
        ...(start.approvals === undefined || start.approvals.length === 0 ? {} : { approvals: start.approvals }),
        ...(start.approvalTimeoutMs === undefined ? {} : { approvalTimeoutMs: start.approvalTimeoutMs }),
      }
      const ready = yield* Deferred.make<Omit<RunningProxy, "exited" | "decide">, ProxyFailed>()
      const handle = (line: string) => {
        let message
        try {
          message = decodeProxyMessageLine(line)
        } catch {
          return // not ours to interpret; the contract says stdout is NDJSON only
        }
        if (message._tag === "ready") {
          const { pid, caCertificatePem, ports } = message
          Deferred.doneUnsafe(ready, Effect.succeed({ pid, caCertificatePem, ports }))
        } else if (message._tag === "audit") start.onAudit(message.event)
        else if (message._tag === "llm") start.llmHistory?.onExchange(message.exchange)
        else if (message._tag === "approval") {
          const { requestId, rule, host, method, path } = message
          start.onApproval?.({ requestId, rule, host, method, path })
        } else if (message._tag === "error" && message.fatal) {
          Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: message.message })))
        }
      }
      for (const line of early.splice(0)) {
        handle(line)
      }
      onLine = handle
      child.once("error", (e) => Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: String(e) }))))
      child.once("exit", (code) =>
        Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: `exited ${code} before ready` }))))
      if (!running()) {
        Deferred.doneUnsafe(ready, Effect.fail(new ProxyFailed({ reason: "the proxy had exited" })))
      }
      child.stdin!.write(encodeProxyConfigLine(config))
      const started = yield* Deferred.await(ready).pipe(
        Effect.timeoutOrElse({
          duration: readyTimeoutMs,
          orElse: () =>
            Effect.fail(new ProxyFailed({ reason: `not ready within ${readyTimeoutMs} ms` })),
        }),
      )
      const decide = (requestId: string, approve: boolean) =>
        void child.stdin!.write(encodeProxyDecisionLine({ _tag: "decision", requestId, approve }))
      return { ...started, exited, decide }
    })

  const stop = Effect.gen(function* () {
    child.stdin?.end()
    child.kill("SIGTERM")
    const done = yield* Deferred.await(exited).pipe(Effect.timeoutOption(stopGraceMs))
    if (Option.isNone(done)) {
      yield* Effect.logWarning(`proxy ${child.pid} ignored SIGTERM; killing it`)
      child.kill("SIGKILL")
      yield* Deferred.await(exited)
    }
  })

  return { child, exited, running, configure, stop }
}
