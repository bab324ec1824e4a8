import { consoleCookieName } from "@paws/core"
import { Duration, Effect } from "effect"
import { HttpEffect, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ConsoleConfig, type ConsoleSettings } from "./ConsoleConfig.ts"

/**
 * Secure when browsers reach control over https: its public URL says so, or the TLS terminator in
 * front of it does (X-Forwarded-Proto; the flag only narrows where the cookie goes).
 */
export const overTls = (config: ConsoleSettings, request: HttpServerRequest.HttpServerRequest) =>
  config.publicUrl?.startsWith("https://") === true || request.headers["x-forwarded-proto"] === "https"

/**
 * The cookie's name: `__Host-paws_session` when Secure, so that no other host (a sibling subdomain,
 * e.g. an exposed port's `{port}-{id}.DOMAIN`) can set or shadow it; plain `paws_session` over http
 * (a `__Host-` cookie must be Secure). Over TLS only the `__Host-` name is read.
 */
export const consoleCookieNameFor = (config: ConsoleSettings, request: HttpServerRequest.HttpServerRequest) =>
  overTls(config, request) ? `__Host-${consoleCookieName}` : consoleCookieName

/** This request's sign-in cookie value, under the name its transport calls for. */
export const readConsoleCookie = (config: ConsoleSettings, request: HttpServerRequest.HttpServerRequest) =>
  request.cookies[consoleCookieNameFor(config, request)] || undefined

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
      Effect.orDie(HttpServerResponse.setCookie(response, consoleCookieNameFor(config, request), value, options))
    )
  })

/** Clears the sign-in cookie on this request's response. */
export const clearConsoleCookie = (config: ConsoleSettings) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const options = attributes(config, request)
    yield* HttpEffect.appendPreResponseHandler((_req, response) =>
      Effect.orDie(HttpServerResponse.expireCookie(response, consoleCookieNameFor(config, request), options))
    )
  })

/** The sign-in cookie of this request, if any. */
export const consoleCookie = Effect.gen(function* () {
  return readConsoleCookie(yield* ConsoleConfig, yield* HttpServerRequest.HttpServerRequest)
})
