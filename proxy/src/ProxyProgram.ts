/**
 * The proxy program: run by main.ts (from source, once the compile cache is on) or from the proxy's
 * bundle (ProxyBundle.ts, by ProxyLoader.cjs). Nothing happens at import: the bundle is also
 * loaded once, to make its code cache, by a process that is no proxy.
 * Imports are per module (effect/Effect, not the barrel) because spawn→ready time counts.
 */
import * as Effect from "effect/Effect"
import { runMain } from "@effect/platform-node/NodeRuntime"
import { decodeConfig, drain, message, readConfigLine, watchStdinEnd, writeLine } from "./ParentChannel.ts"
import { prepareAuthority, startProxy } from "./ProxyServer.ts"

export const runProxy = (): void => {
  // Not performance.timeOrigin: the first use of `performance` loads perf_hooks (~1 ms of a spawn).
  const spawnedAt = Date.now() - process.uptime() * 1000

  // This process's CA is made while it waits for its config (a pooled proxy waits for a session).
  const authority = prepareAuthority()
  authority.catch(() => {}) // startProxy awaits it: a failure there fails the start and is sent to the parent as a fatal error

  const program = Effect.gen(function* () {
    process.stdin.setEncoding("utf8")
    const stdinEnded = watchStdinEnd(process.stdin)
    const config = yield* readConfigLine(process.stdin).pipe(Effect.flatMap(decodeConfig))
    // Decisions on held requests; none can arrive before the proxy is ready (nothing is held yet).
    let onParentLine = (_line: string) => {}
    drain(process.stdin, (line) => onParentLine(line))
    yield* Effect.scoped(Effect.gen(function* () {
      const proxy = yield* startProxy(config, writeLine, authority)
      onParentLine = proxy.gate.onParentLine
      proxy.audit.send({
        _tag: "ready",
        pid: process.pid,
        caCertificatePem: proxy.caCertificatePem,
        ports: proxy.ports,
        startupMs: Math.round((Date.now() - spawnedAt) * 10) / 10,
      })
      yield* stdinEnded
    }))
  }).pipe(
    Effect.catch((error) =>
      Effect.sync(() => {
        writeLine(message({ _tag: "error", message: error.message, fatal: true }))
        process.exitCode = 2
      })
    ),
    Effect.ensuring(Effect.sync(() => process.exit())),
  )

  // A bug on one connection must not take down every other connection of the VM.
  process.on("uncaughtException", (error) => {
    writeLine(message({ _tag: "error", message: `internal error: ${error.name}`, fatal: false }))
  })

  runMain(program, { disableErrorReporting: true })
}
