import { isTerminal, type SessionId } from "@paws/core"
import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ssoAccess } from "../console/ExposureSignIn.ts"
import { ControlConfig } from "../ControlConfig.ts"
import { safeReturnTo } from "../oidc/LoginPage.ts"
import { PortExposures } from "../PortExposures.ts"
import { SessionStore } from "../SessionStore.ts"

const text = (status: number, body: string) => HttpServerResponse.text(`${body}\n`, { status })

/**
 * `GET /v1/auth/port-grant?exposure=ID&next=/path`: an `sso` exposure's host form sends its browser
 * here, where the console cookie is; a sign-in with access gets a grant for the exposure, good
 * while the sign-in is, handed back once in `?paws_grant=` (the exposure trades it for its cookie).
 */
export const PortGrantHttp = HttpRouter.add(
  "GET",
  "/v1/auth/port-grant",
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const exposures = yield* PortExposures
    const store = yield* SessionStore
    const { publicDomain } = yield* ControlConfig
    const url = new URL(request.url, "http://control")
    const id = url.searchParams.get("exposure") ?? ""
    const row = /^[a-z0-9]{24}$/.test(id) ? yield* exposures.find(id) : undefined
    const session = row === undefined ? undefined : yield* store.get(row.session_id as SessionId)
    if (row === undefined || row.access !== "sso" || session === undefined || isTerminal(session.status)) {
      return text(404, "no such exposed port")
    }
    if (publicDomain === undefined) return text(404, "exposed ports have no host form here (PAWS_PUBLIC_DOMAIN)")
    const next = safeReturnTo(url.searchParams.get("next"))
    const access = yield* ssoAccess(session, `${url.pathname}${url.search}`)
    if (access._tag === "refused") return access.response
    const value = yield* exposures.grant(id, new Date(access.signedIn.identity.expiresAt))
    const to = new URL(next, `https://${row.port}-${row.id}.${publicDomain}`)
    to.searchParams.set("paws_grant", value)
    return HttpServerResponse.redirect(to.href, { status: 302 })
  }),
)
