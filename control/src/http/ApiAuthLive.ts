import { ApiAuth, csrfHeaderName, CurrentPrincipal, Forbidden, RequiredScope, scopeAllows } from "@paws/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { HttpServerRequest } from "effect/http"
import type { HttpApiEndpoint } from "effect/http-api"
import { ApiKeys } from "../ApiKeys.ts"
import { auditApiCall } from "../audit/ApiCallAudit.ts"
import { actorOf, AuditLog } from "../audit/AuditLog.ts"
import { ConsoleConfig } from "../console/ConsoleConfig.ts"
import { readConsoleCookie } from "../console/ConsoleCookie.ts"
import { ConsoleSessions } from "../console/ConsoleSessions.ts"
import { Quotas } from "../Quotas.ts"
import { rateLimitedResponse } from "./RateLimitedResponse.ts"

const readOnly = new Set(["GET", "HEAD", "OPTIONS"])

/**
 * Bearer API keys, or (with no `Authorization`) the console's sign-in cookie; the scope an
 * endpoint needs comes from its `RequiredScope` annotation. A cookie-authenticated change needs
 * the CSRF header (a cross-site form cannot set it). A key's request rate is checked here and
 * answered 429 with `Retry-After` (RateLimitedResponse).
 */
export const ApiAuthLive = Layer.effect(
  ApiAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeys
    const consoles = yield* ConsoleSessions
    const consoleConfig = yield* ConsoleConfig
    const audit = yield* AuditLog
    const quotas = yield* Quotas

    /** The cookie's sign-in, or undefined when there is no cookie (then the missing-key 401 stands). */
    const signedIn = Effect.fnUntraced(function* (endpoint: HttpApiEndpoint.Top) {
      const request = yield* HttpServerRequest.HttpServerRequest
      const cookie = readConsoleCookie(consoleConfig, request)
      if (cookie === undefined) return undefined
      const session = yield* consoles.resolve(cookie)
      const header = request.headers[csrfHeaderName.toLowerCase()]
      if (!readOnly.has(endpoint.method) && !consoles.csrfMatches(cookie, header)) {
        return yield* new Forbidden({
          message: `a change made with the console cookie needs the header ${csrfHeaderName}: <csrfToken from ` +
            "POST /v1/auth/login or GET /v1/auth/me>",
          requiredScope: Context.getOrUndefined(endpoint.annotations, RequiredScope) ?? "read",
        })
      }
      return session
    })

    return ApiAuth.of({
      bearer: (httpEffect, { credential, endpoint, group }) =>
        Effect.gen(function* () {
          const token = Redacted.value(credential)
          const session = token === "" ? yield* signedIn(endpoint) : undefined
          const principal = session?.principal ?? (yield* keys.authenticate(token))
          const who = session === undefined
            ? { actor: actorOf(principal.keyId), project: principal.project }
            : { actor: session.identity.actor, email: session.identity.email, project: principal.project }
          const required = Context.getOrUndefined(endpoint.annotations, RequiredScope)
          if (required !== undefined && !scopeAllows(principal.scopes, required)) {
            const refused = new Forbidden({
              message: `${session === undefined ? "this API key" : "this console sign-in"} (scopes: ${
                principal.scopes.join(", ")
              }) lacks the scope \`${required}\``,
              requiredScope: required,
            })
            return yield* auditApiCall(audit, who, endpoint, group, Effect.fail(refused))
          }
          yield* quotas.admitRequest(principal)
          return yield* auditApiCall(
            audit,
            who,
            endpoint,
            group,
            Effect.provideService(httpEffect, CurrentPrincipal, principal),
          )
        }).pipe(Effect.catchTag("RateLimited", (e) => Effect.succeed(rateLimitedResponse(e)))),
    })
  }),
)
