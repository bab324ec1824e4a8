import { Console, Effect } from "effect"
import { type ApiClient, ApiClientLayer, describeError, type Settings } from "../ApiClient.ts"
import { resolveClientSettings } from "../ClientConfig.ts"
import { root } from "./root.ts"

/**
 * Runs a command body against the control API: resolves URL and key, provides the client,
 * and turns every failure into one readable line on stderr and exit code 1.
 */
export const withApi = <A, E, R>(body: Effect.Effect<A, E, R | ApiClient | Settings>) =>
  Effect.gen(function* () {
    const { url } = yield* root
    const settings = yield* resolveClientSettings({ url })
    return yield* body.pipe(Effect.provide(ApiClientLayer(settings)))
  }).pipe(
    Effect.catch((error) =>
      Console.error(`paws: ${describeError(error)}`).pipe(Effect.andThen(Effect.sync(() => {
        process.exitCode = 1
      })))
    ),
  )
