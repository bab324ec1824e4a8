import { NodeSocket } from "@effect/platform-node"
import { Cause, Config, Effect, Layer, Redacted } from "effect"
import { Socket } from "effect/socket"
import { controlSettings } from "./ControlConfig.ts"
import { runNodeLink } from "./NodeLink.ts"

const staticNodesConfig = Config.all({
  urls: controlSettings.staticNodes.config.pipe(
    Config.map((s) => s.split(",").map((u) => u.trim()).filter((u) => u !== "")),
  ),
  token: controlSettings.staticNodesToken.config.pipe(Config.map((t) => t ?? Redacted.make(""))),
})

/** Dials one node and runs its link, again and again with backoff (up to 30 s), until interrupted. */
export const dialNodeForever = (url: string, headers: Record<string, string>) => {
  let delay = 500
  const once = Effect.scoped(Effect.gen(function* () {
    const socket = yield* Socket.makeWebSocket(url, { headers, openTimeout: 10_000 })
    yield* runNodeLink(socket)
    delay = 500 // it was up: the next attempt starts from the short delay again
  })).pipe(
    Effect.catchCause((cause) =>
      Effect.logWarning("node unreachable").pipe(
        Effect.annotateLogs({ url, cause: Cause.pretty(cause).split("\n")[0] }),
      )
    ),
    Effect.andThen(Effect.suspend(() => {
      const wait = delay
      delay = Math.min(delay * 2, 30_000)
      return Effect.sleep(wait)
    })),
  )
  return Effect.forever(once)
}

/**
 * The static mode: control dials every node listed in `PAWS_NODES` (`ws://host:port/rpc`,
 * comma-separated) with `PAWS_NODES_TOKEN` as the bearer, and redials with backoff (up to
 * 30 s) whenever a link drops or cannot be opened. Nothing happens when PAWS_NODES is unset.
 */
export const StaticNodes = Layer.effectDiscard(Effect.gen(function* () {
  const { urls, token } = yield* Effect.orDie(staticNodesConfig)
  const headers = { authorization: `Bearer ${Redacted.value(token)}` }
  for (const url of urls) yield* Effect.forkScoped(dialNodeForever(url, headers))
})).pipe(Layer.provide(NodeSocket.layerWebSocketConstructor))
