import { ApiAuth, CurrentPrincipal, Forbidden, RequiredScope, scopeAllows } from "@paws/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { HttpServerResponse } from "effect/http"
import { ApiKeys } from "../ApiKeys.ts"
import { Quotas } from "../Quotas.ts"

/**
 * Bearer API keys; the scope an endpoint needs comes from its `RequiredScope` annotation. A
 * key's request rate is checked here; any `RateLimited` (rate or session limits) is answered 429
 * with `Retry-After`, which an error schema cannot set.
 */
export const ApiAuthLive = Layer.effect(
  ApiAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeys
    const quotas = yield* Quotas
    return ApiAuth.of({
      bearer: (httpEffect, { credential, endpoint }) =>
        Effect.gen(function* () {
          const principal = yield* keys.authenticate(Redacted.value(credential))
          const required = Context.getOrUndefined(endpoint.annotations, RequiredScope)
          if (required !== undefined && !scopeAllows(principal.scopes, required)) {
            return yield* new Forbidden({
              message: `this API key (scopes: ${principal.scopes.join(", ")}) lacks the scope \`${required}\``,
              requiredScope: required,
            })
          }
          yield* quotas.admitRequest(principal)
          return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal)
        }).pipe(
          Effect.catchTag("RateLimited", (e) =>
            Effect.succeed(HttpServerResponse.jsonUnsafe({
              _tag: e._tag,
              message: e.message,
              limit: e.limit,
              retryAfterSeconds: e.retryAfterSeconds,
            }, { status: 429, headers: { "retry-after": String(e.retryAfterSeconds) } }))),
        ),
    })
  }),
)
