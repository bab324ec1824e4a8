import {
  Api,
  CurrentPrincipal,
  exposurePathPrefix,
  type PortExposureView,
  SessionNotFound,
  SessionNotLive,
} from "@paws/core"
import { Effect } from "effect"
import { HttpServerRequest } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { ControlConfig } from "../ControlConfig.ts"
import { ExposureListener } from "../exposure/ExposureListener.ts"
import { type ExposureRow, PortExposures } from "../PortExposures.ts"
import { iso } from "../Rows.ts"
import { SessionStore } from "../SessionStore.ts"

/** The exposure's URL on the control URL this request came to. */
const view = (row: ExposureRow, base: string, domain: string | undefined): PortExposureView => ({
  port: row.port,
  access: row.access,
  url: `${base}${exposurePathPrefix}${row.id}/`,
  ...(domain === undefined ? {} : { hostUrl: `https://${row.port}-${row.id}.${domain}/` }),
  createdAt: iso(row.created_at) ?? "",
})

/** The path form lives on the exposure listener, another origin than control's. */
const baseUrl = Effect.gen(function* () {
  const listener = yield* ExposureListener
  return listener.exposureOrigin(yield* HttpServerRequest.HttpServerRequest)
})

export const PortsHttp = HttpApiBuilder.group(
  Api,
  "ports",
  Effect.fn(function* (handlers) {
    const store = yield* SessionStore
    const exposures = yield* PortExposures
    const { publicDomain } = yield* ControlConfig
    /** A session of the caller's project; another project's is a 404, exactly like an unknown id. */
    const session = (id: Parameters<typeof store.get>[0]) =>
      Effect.gen(function* () {
        const { project } = yield* CurrentPrincipal
        const s = yield* store.get(id)
        if (s === undefined || s.project !== project) {
          return yield* new SessionNotFound({ sessionId: id, message: `no session ${id}` })
        }
        return s
      })
    return handlers
      .handle("expose", ({ params, payload }) =>
        Effect.gen(function* () {
          const s = yield* session(params.id)
          if (s.status !== "running") {
            return yield* new SessionNotLive({
              sessionId: params.id,
              status: s.status,
              message: `session ${params.id} is ${s.status}; ports can be exposed while it is running`,
            })
          }
          const created = yield* exposures.create(params.id, payload)
          yield* Effect.logInfo("port exposed").pipe(
            Effect.annotateLogs({ session: params.id, port: payload.port, access: payload.access }),
          )
          return {
            ...view(created.row, yield* baseUrl, publicDomain),
            ...(created.token === undefined ? {} : { token: created.token }),
            ...(created.pin === undefined ? {} : { pin: created.pin }),
          }
        }))
      .handle("list", ({ params }) =>
        Effect.gen(function* () {
          yield* session(params.id)
          const base = yield* baseUrl
          return (yield* exposures.list(params.id)).map((row) => view(row, base, publicDomain))
        }))
  }),
)
