import { Cause, Effect, Exit } from "effect"
import { HttpServerRequest, type HttpServerResponse } from "effect/http"
import type { HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import type { AuditLog } from "./AuditLog.ts"

const readOnly = new Set(["GET", "HEAD", "OPTIONS"])
const handlerErrorKey = "~effect/http-api/HttpApiBuilder/HandlerError"
/** A call on one session (`DELETE /v1/sessions/{id}`) is also filed under it, for `?session=`. */
const sessionPath = /^\/v1\/sessions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\/|$)/

/** `ok`, or the tag of the error the call ended with (`SessionNotFound`, `Forbidden`, …). */
const outcome = <E>(exit: Exit.Exit<HttpServerResponse.HttpServerResponse, E>): string => {
  if (Exit.isSuccess(exit)) return exit.value.status < 400 ? "ok" : `http_${exit.value.status}`
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") {
    // A handler's typed error reaches the middleware wrapped by HttpApiBuilder.
    const wrapped = error.value as { _tag?: unknown; error?: { _tag?: unknown } }
    const tag = handlerErrorKey in wrapped ? wrapped.error?._tag : wrapped._tag
    if (tag === "HttpApiSchemaError") return "InvalidRequest"
    return typeof tag === "string" ? tag : "error"
  }
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "error"
}

/**
 * Wraps one authenticated API call: a mutating one (not GET/HEAD) is recorded with the key that
 * made it, the endpoint, the request path (the target) and how it ended. Bodies are never recorded.
 */
export const auditApiCall = <E, R>(
  audit: AuditLog["Service"],
  /** `key:<id>`, or `oidc:<subject>` (with `email`) for a console user signed in by OIDC; the caller's project. */
  who: { readonly actor: string; readonly project: string; readonly email?: string | undefined },
  endpoint: HttpApiEndpoint.Top,
  group: HttpApiGroup.Top,
  httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
) =>
  Effect.gen(function* () {
    if (readOnly.has(endpoint.method)) return yield* httpEffect
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0] ?? request.url
    return yield* audit.recordAround(httpEffect, (exit) => ({
      actor: who.actor,
      project: who.project,
      action: `api.${group.identifier}.${endpoint.identifier}`,
      target: path,
      result: outcome(exit),
      session: sessionPath.exec(path)?.[1],
      detail: {
        method: endpoint.method,
        ...(who.email === undefined ? {} : { email: who.email }),
        ...(Exit.isSuccess(exit) ? { status: exit.value.status } : {}),
      },
    }))
  })
