import { ApiAuth, CurrentPrincipal, Forbidden, RequiredScope, scopeAllows } from "@paws/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { ApiKeys } from "../ApiKeys.ts"
import { auditApiCall } from "../audit/ApiCallAudit.ts"
import { AuditLog } from "../audit/AuditLog.ts"
import { Quotas } from "../Quotas.ts"
import { rateLimitedResponse } from "./RateLimitedResponse.ts"

/**
 * Bearer API keys; the scope an endpoint needs comes from its `RequiredScope` annotation. A
 * key's request rate is checked here and answered 429 with `Retry-After` (RateLimitedResponse).
 */
export const ApiAuthLive = Layer.effect(
  ApiAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeys
    const audit = yield* AuditLog
    const quotas = yield* Quotas
    return ApiAuth.of({
      bearer: (httpEffect, { credential, endpoint, group }) =>
        Effect.gen(function* () {
          const principal = yield* keys.authenticate(Redacted.value(credential))
          const required = Context.getOrUndefined(endpoint.annotations, RequiredScope)
          if (required !== undefined && !scopeAllows(principal.scopes, required)) {
            const refused = new Forbidden({
              message: `this API key (scopes: ${principal.scopes.join(", ")}) lacks the scope \`${required}\``,
              requiredScope: required,
            })
            return yield* auditApiCall(audit, principal, endpoint, group, Effect.fail(refused))
          }
          yield* quotas.admitRequest(principal)
          return yield* auditApiCall(
            audit,
            principal,
            endpoint,
            group,
            Effect.provideService(httpEffect, CurrentPrincipal, principal),
          )
        }).pipe(Effect.catchTag("RateLimited", (e) => Effect.succeed(rateLimitedResponse(e)))),
    })
  }),
)
