import { NodeHttpServer } from "@effect/platform-node"
import { readSettings } from "@paws/core/Settings"
import { Context, Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServer, type HttpServerRequest } from "effect/http"
import { createServer } from "node:http"
import { ConsoleConfig } from "../console/ConsoleConfig.ts"
import { ControlConfig } from "../ControlConfig.ts"
import { exposurePathRoutes } from "../http/ExposureProxy.ts"
import { exposureListenerSettings } from "./ExposureListenerConfig.ts"

type Request = HttpServerRequest.HttpServerRequest

const protoOf = (request: Request) => request.headers["x-forwarded-proto"] === "https" ? "https" : "http"
/** The host name (no port) a browser reached us at; bracketed for IPv6. */
const hostnameOf = (request: Request) => URL.parse(`http://${request.headers["host"] ?? "localhost"}`)?.hostname ?? ""

/**
 * The path form of exposed ports (`/p/{id}/`) is served by a listener of its own (PAWS_EXPOSURE_PORT),
 * never on control's origin: a guest page's scripts then cannot read control's API or the console
 * (another origin: no CORS, and the CSRF header every cookie-authenticated mutation needs cannot be
 * sent cross-origin), though the console cookie still rides along (cookies ignore ports; it is
 * never relayed to a guest). Both origins as a browser that reached either listener sees them.
 */
export class ExposureListener extends Context.Service<ExposureListener, {
  /** `http://host:port` of the exposure listener (PAWS_EXPOSURE_URL if set). */
  readonly exposureOrigin: (request: Request) => string
  /** `http://host:port` of control (PAWS_PUBLIC_URL if set). */
  readonly controlOrigin: (request: Request) => string
}>()("paws/control/ExposureListener") {
  /** Needs control's own HttpServer (to know its bound port). */
  static readonly layer = Layer.effect(
    ExposureListener,
    Effect.gen(function* () {
      const config = yield* ControlConfig
      const { publicUrl } = yield* ConsoleConfig
      const settings = yield* readSettings(exposureListenerSettings)
      const main = (yield* HttpServer.HttpServer).address
      const controlPort = main._tag === "UnixPathAddress" ? config.port : main.port
      const controlOrigin = (request: Request) =>
        publicUrl === undefined ? `${protoOf(request)}://${hostnameOf(request)}:${controlPort}` : publicUrl
      const port = Option.getOrElse(settings.exposurePort, () => config.port === 0 ? 0 : config.port + 1)
      const served = yield* Layer.build(
        HttpRouter.serve(exposurePathRoutes(controlOrigin), { disableLogger: !config.logRequests }).pipe(
          Layer.provideMerge(NodeHttpServer.layer(createServer, { host: config.host, port })),
        ),
      )
      const bound = Context.get(served, HttpServer.HttpServer).address
      const exposurePort = bound._tag === "UnixPathAddress" ? port : bound.port
      const fixed = Option.getOrUndefined(settings.exposureUrl)?.replace(/\/+$/, "")
      if (fixed !== undefined && publicUrl !== undefined && new URL(fixed).hostname !== new URL(publicUrl).hostname) {
        // The console cookie (host-only) will not reach the listener: path-form `sso` cannot see sign-ins there.
        yield* Effect.logWarning(
          "PAWS_EXPOSURE_URL is on another host name than PAWS_PUBLIC_URL: path-form sso " +
            "exposures will not see console sign-ins; use the host form (PAWS_PUBLIC_DOMAIN) for sso",
        )
      }
      return ExposureListener.of({
        exposureOrigin: (request) => fixed ?? `${protoOf(request)}://${hostnameOf(request)}:${exposurePort}`,
        controlOrigin,
      })
    }),
  )
}
