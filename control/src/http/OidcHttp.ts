import { Duration, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { AuditLog } from "../audit/AuditLog.ts"
import { ConsoleConfig } from "../console/ConsoleConfig.ts"
import { overTls, setConsoleCookie } from "../console/ConsoleCookie.ts"
import { ConsoleSessions } from "../console/ConsoleSessions.ts"
import { OidcConfig } from "../oidc/OidcConfig.ts"
import { OidcLogin } from "../oidc/OidcLogin.ts"
import { continuePage, refusalPage, safeReturnTo } from "../oidc/LoginPage.ts"
import { Projects } from "../Projects.ts"

const pendingCookie = "paws_oidc"
const pendingPath = "/v1/auth/oidc"

/** The callback URL: the setting, else the public URL's, else this request's own origin. */
const callbackUrl = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { settings } = yield* OidcConfig
  const { publicUrl } = yield* ConsoleConfig
  if (settings?.redirectUrl !== undefined) return settings.redirectUrl
  const origin = publicUrl ??
    `${request.headers["x-forwarded-proto"] === "https" ? "https" : "http"}://${request.headers["host"]}`
  return `${origin}/v1/auth/oidc/callback`
})

/**
 * `GET /v1/auth/oidc/login?returnTo=/path` → 302 to the provider; `GET /v1/auth/oidc/callback` →
 * the console cookie and on to `returnTo`. Browser navigations, so plain routes outside the API
 * document (the provider adds its own query parameters to the callback).
 */
export const OidcHttp = Layer.mergeAll(
  HttpRouter.add(
    "GET",
    "/v1/auth/oidc/login",
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const oidc = yield* OidcLogin
      const console = yield* ConsoleConfig
      const url = new URL(request.url, "http://control")
      const started = yield* oidc.begin(safeReturnTo(url.searchParams.get("returnTo")), yield* callbackUrl).pipe(
        Effect.result,
      )
      if (started._tag === "Failure") return refusalPage(started.failure.status, started.failure.message)
      return yield* HttpServerResponse.setCookie(
        HttpServerResponse.redirect(started.success.location, { status: 302 }),
        pendingCookie,
        started.success.pending,
        {
          httpOnly: true,
          // Lax: the provider's redirect back is a cross-site top-level navigation, which Strict would strip.
          sameSite: "lax",
          path: pendingPath,
          maxAge: Duration.minutes(10),
          secure: overTls(console, request),
        },
      ).pipe(Effect.orDie)
    }),
  ),
  HttpRouter.add(
    "GET",
    "/v1/auth/oidc/callback",
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const oidc = yield* OidcLogin
      const oidcConfig = yield* OidcConfig
      const consoles = yield* ConsoleSessions
      const config = yield* ConsoleConfig
      const audit = yield* AuditLog
      const projects = yield* Projects
      const finished = yield* oidc.complete(new URL(request.url, "http://control"), request.cookies[pendingCookie])
        .pipe(Effect.result)
      const forget = (response: HttpServerResponse.HttpServerResponse) =>
        HttpServerResponse.expireCookie(response, pendingCookie, { path: pendingPath })
      if (finished._tag === "Failure") {
        return yield* forget(refusalPage(finished.failure.status, finished.failure.message)).pipe(Effect.orDie)
      }
      const user = finished.success
      const who = {
        actor: `oidc:${user.subject}`,
        target: "/v1/auth/oidc/callback",
        action: "console.login",
        project: user.project,
      }
      const detail = { via: "oidc", ...(user.email === undefined ? {} : { email: user.email }) }
      if (user.scopes.length === 0) {
        yield* audit.record({ ...who, result: "Forbidden", detail })
        const name = user.email ?? user.subject
        const map = oidcConfig.settings?.rules.map((r) => `${r.claim}:${r.value}`).join(", ") ?? ""
        return yield* forget(refusalPage(
          403,
          `${name} signed in, but has no paws scope: none of ${map} applies to this account. ` +
            "Ask an administrator to add you to one of them.",
        )).pipe(Effect.orDie)
      }
      const project = yield* projects.get(user.project).pipe(Effect.result)
      if (project._tag === "Failure") {
        return yield* forget(refusalPage(503, `the project for single sign-on (${user.project}) does not exist`))
          .pipe(Effect.orDie)
      }
      const { cookie } = yield* consoles.create({
        via: "oidc",
        subject: user.subject,
        email: user.email,
        scopes: user.scopes,
        project: user.project,
      })
      yield* audit.record({ ...who, result: "ok", detail: { ...detail, scopes: user.scopes } })
      yield* setConsoleCookie(config, cookie)
      return yield* forget(continuePage(user.returnTo)).pipe(Effect.orDie)
    }),
  ),
)
