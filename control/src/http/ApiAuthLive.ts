import { ApiAuth, CurrentPrincipal, Forbidden, RequiredScope, scopeAllows } from "@paws/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { ApiKeys } from "../ApiKeys.ts"
import { auditApiCall } from "../audit/ApiCallAudit.ts"
import { AuditLog } from "../audit/AuditLog.ts"

/** Bearer API keys; the scope an endpoint needs comes from its `RequiredScope` annotation. */
export const ApiAuthLive = Layer.effect(
  ApiAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeys
    const audit = yield* AuditLog
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
            return yield* auditApiCall(audit, principal.keyId, endpoint, group, Effect.fail(refused))
          }
          return yield* auditApiCall(
            audit,
            principal.keyId,
            endpoint,
            group,
            Effect.provideService(httpEffect, CurrentPrincipal, principal),
          )
        }),
    })
  }),
)
