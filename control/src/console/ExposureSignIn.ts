import { scopeAllows, type Session } from "@paws/core"
import { Effect, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { OidcLogin } from "../oidc/OidcLogin.ts"
import { ConsoleConfig } from "./ConsoleConfig.ts"
import { readConsoleCookie } from "./ConsoleCookie.ts"
import { ConsoleSessions } from "./ConsoleSessions.ts"

const page = (status: number, message: string) =>
  HttpServerResponse.text(`<!doctype html><meta charset="utf-8"><title>paws</title><p>${message}</p>\n`, {
    status,
    contentType: "text/html; charset=utf-8",
  })

/**
 * The `sso` access of an exposed port: the console's sign-in, checked at every request (signing out
 * or revoking the key ends access at once), with scope `read` on the session's project. A browser
 * without one goes through the OIDC login and comes back to `returnTo`. Either the refusal to
 * answer with, or the sign-in that may pass.
 */
export const ssoAccess = (session: Session, returnTo: string, controlOrigin = "") =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const consoles = yield* ConsoleSessions
    const oidc = yield* OidcLogin
    const cookie = readConsoleCookie(yield* ConsoleConfig, request)
    const signedIn = cookie === undefined ? Option.none() : yield* Effect.option(consoles.resolve(cookie))
    if (Option.isNone(signedIn)) {
      if (!oidc.enabled) {
        return refused(
          page(
            401,
            `This port is for people signed in to the <a href="${controlOrigin}/">paws console</a>: sign in, then reload.`,
          ),
        )
      }
      // The login comes back to `returnTo` on control, whose /p/ route sends the browser on to the exposure listener.
      const login = `${controlOrigin}/v1/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`
      return refused(HttpServerResponse.redirect(login, {
        status: 302,
      }))
    }
    const { principal, identity } = signedIn.value
    if (principal.project !== session.project || !scopeAllows(principal.scopes, "read")) {
      return refused(page(
        403,
        `This port needs scope read on project ${session.project}; ${identity.email ?? identity.actor} ` +
          `has ${principal.scopes.join(", ")} on project ${principal.project}.`,
      ))
    }
    return { _tag: "allowed" as const, signedIn: signedIn.value }
  })

const refused = (response: HttpServerResponse.HttpServerResponse) => ({ _tag: "refused" as const, response })

/**
 * The host form (`{port}-{id}.DOMAIN`) is another origin than control: the console cookie is not
 * sent there. Its browser is sent to control (PAWS_PUBLIC_URL) to pick up a grant for this
 * exposure, which comes back once in `?paws_grant=` and is traded for the exposure's cookie.
 */
export const hostFormSignIn = (id: string, next: string) =>
  Effect.gen(function* () {
    const { publicUrl } = yield* ConsoleConfig
    if (publicUrl === undefined) {
      return page(503, "This port signs in through the paws console, whose address (PAWS_PUBLIC_URL) is not set.")
    }
    const to = `${publicUrl}/v1/auth/port-grant?exposure=${id}&next=${encodeURIComponent(next)}`
    return HttpServerResponse.redirect(to, { status: 302 })
  })
