import { ApiAuth, CurrentPrincipal, Forbidden, RequiredScope, scopeAllows } from "@paws/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { ApiKeys } from "../ApiKeys.ts"

/** Bearer API keys; the scope an endpoint needs comes from its `RequiredScope` annotation. */
export const ApiAuthLive = Layer.effect(
  ApiAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeys
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
          return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal)
        }),
    })
  }),
)
