import type { RateLimited } from "@paws/core"
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"

/**
 * A 429 with `Retry-After`: an error schema can give the body but not the header, so handlers
 * (and the auth middleware) answer a `RateLimited` with this response instead of failing.
 */
export const rateLimitedResponse = (e: RateLimited): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe({
    _tag: e._tag,
    message: e.message,
    limit: e.limit,
    retryAfterSeconds: e.retryAfterSeconds,
  }, { status: 429, headers: { "retry-after": String(e.retryAfterSeconds) } })

export const answerRateLimited = <A, E, R>(effect: Effect.Effect<A, E | RateLimited, R>) =>
  Effect.catchIf(
    effect,
    (e): e is RateLimited => (e as { _tag?: string })._tag === "RateLimited",
    (e) => Effect.succeed(rateLimitedResponse(e)),
  ) as Effect.Effect<A | HttpServerResponse.HttpServerResponse, Exclude<E, RateLimited>, R>
