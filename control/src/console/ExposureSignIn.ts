import { consoleCookieName, scopeAllows, type Session } from "@paws/core"
import { Effect, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { OidcLogin } from "../oidc/OidcLogin.ts"
import { ConsoleSessions } from "./ConsoleSessions.ts"

const page = (status: number, message: string) =>
  HttpServerResponse.text(`<!doctype html><meta charset="utf-8"><title>paws</title><p>${message}</p>\n`, {
    status,
    contentType: "text/html; charset=utf-8",
  })

/**
 * The `sso` access of an exposed port: the console's sign-in, checked at every request (signing out
 * or revoking the key ends access at once), with scope `read` on the session's project. A browser
 * without one goes through the OIDC login and comes back to `returnTo`. Undefined: let it through.
 */
export const ssoAccess = (session: Session, returnTo: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const consoles = yield* ConsoleSessions
    const oidc = yield* OidcLogin
    const cookie = request.cookies[consoleCookieName]
    const signedIn = cookie === undefined || cookie === ""
      ? Option.none()
      : yield* Effect.option(consoles.resolve(cookie))
    if (Option.isNone(signedIn)) {
      if (!oidc.enabled) {
        return page(401, 'This port is for people signed in to the <a href="/">paws console</a>: sign in, then reload.')
      }
      return HttpServerResponse.redirect(`/v1/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`, {
        status: 302,
      })
    }
    const { principal, identity } = signedIn.value
    if (principal.project !== session.project || !scopeAllows(principal.scopes, "read")) {
      return page(
        403,
        `This port needs scope read on project ${session.project}; ${identity.email ?? identity.actor} ` +
          `has ${principal.scopes.join(", ")} on project ${principal.project}.`,
      )
    }
    return undefined
  })
