import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, References } from "effect"
import { controlSettings } from "./ControlConfig.ts"
import { ControlServer, serverUrl } from "./ControlServer.ts"

/** JSON log lines on stdout at PAWS_LOG_LEVEL; secrets are never logged (keys go to a 0600 file). */
export const ControlLogging = Layer.unwrap(Effect.gen(function* () {
  const level = yield* controlSettings.logLevel.config
  return Layer.mergeAll(
    Logger.layer([Logger.consoleJson]),
    Layer.succeed(References.MinimumLogLevel, level),
  )
}))

const announce = Layer.effectDiscard(Effect.gen(function* () {
  const base = yield* serverUrl
  yield* Effect.logInfo("paws control is serving").pipe(
    Effect.annotateLogs({ api: `${base}/v1`, docs: `${base}/docs` }),
  )
}))

export const ControlMain = announce.pipe(Layer.provideMerge(ControlServer), Layer.provide(ControlLogging))

if (import.meta.main) {
  Layer.launch(ControlMain).pipe(NodeRuntime.runMain)
}
