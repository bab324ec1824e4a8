import { consoleCookieName } from "@paws/core"
import { Duration, Effect } from "effect"
import { HttpEffect, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ConsoleSettings } from "./ConsoleConfig.ts"

/**
 * Secure when browsers reach control over https: its public URL says so, or the TLS terminator in
 * front of it does (X-Forwarded-Proto; the flag only narrows where the cookie goes).
 */
export const overTls = (config: ConsoleSettings, request: HttpServerRequest.HttpServerRequest) =>
  config.publicUrl?.startsWith("https://") === true || request.headers["x-forwarded-proto"] === "https"

const attributes = (config: ConsoleSettings, request: HttpServerRequest.HttpServerRequest) => ({
  httpOnly: true,
  sameSite: "strict" as const,
  path: "/",
  secure: overTls(config, request),
})

/** Sets the sign-in cookie on this request's response. */
export const setConsoleCookie = (config: ConsoleSettings, value: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const options = {
      ...attributes(config, request),
      maxAge: Duration.seconds(Math.floor(Duration.toSeconds(config.sessionTtl))),
    }
    yield* HttpEffect.appendPreResponseHandler((_req, response) =>
      Effect.orDie(HttpServerResponse.setCookie(response, consoleCookieName, value, options))
    )
  })

/** Clears the sign-in cookie on this request's response. */
export const clearConsoleCookie = (config: ConsoleSettings) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const options = attributes(config, request)
    yield* HttpEffect.appendPreResponseHandler((_req, response) =>
      Effect.orDie(HttpServerResponse.expireCookie(response, consoleCookieName, options))
    )
  })

/** The sign-in cookie of this request, if any. */
export const consoleCookie = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => request.cookies[consoleCookieName] || undefined,
)
