import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Metrics } from "../Metrics.ts"

const isRouteNotFound = (e: unknown): boolean => {
  const error = e as { _tag?: string; reason?: { _tag?: string } } | undefined
  return error?._tag === "HttpServerError" && error.reason?._tag === "RouteNotFound"
}

/**
 * Global middleware: every response is counted (status, latency) in the HTTP metrics, and a
 * request for an unknown route gets a JSON 404 like every other error instead of an empty body.
 */
export const HttpObserver = HttpRouter.middleware(
  Effect.gen(function* () {
    const metrics = yield* Metrics
    return (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const start = performance.now()
        let route: string | undefined
        const handled = Effect.catch(httpEffect, (e) => {
          if (!isRouteNotFound(e)) return Effect.fail(e)
          route = "unmatched" // unknown paths must not create unbounded label values
          return Effect.succeed(HttpServerResponse.jsonUnsafe({
            _tag: "NotFound",
            message: `no route for ${request.method} ${request.url.split("?")[0]}; see /docs`,
          }, { status: 404 }))
        })
        return yield* Effect.onExit(handled, (exit) =>
          Effect.sync(() =>
            metrics.recordRequest(
              request.method,
              route ?? request.url,
              exit._tag === "Success" ? exit.value.status : 500,
              (performance.now() - start) / 1000,
            )
          ))
      })
  }),
  { global: true },
)
