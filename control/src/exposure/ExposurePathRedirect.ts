import { exposurePathPrefix } from "@paws/core"
import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ExposureListener } from "./ExposureListener.ts"

/**
 * `/p/{id}/…` on control's own origin serves no guest content: it sends the browser on to the
 * exposure listener (the same path there). That is also where an `sso` port's OIDC login returns.
 */
export const ExposurePathRedirect = HttpRouter.add(
  "*",
  `${exposurePathPrefix}*`,
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const listener = yield* ExposureListener
    const url = new URL(request.url, "http://control")
    return HttpServerResponse.redirect(`${listener.exposureOrigin(request)}${url.pathname}${url.search}`, {
      status: 307,
    })
  }),
)
