import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Rpc } from "effect/rpc"
import { scoped } from "./ApiScoped.ts"
import { SessionNotLive } from "./ApiLiveSessions.ts"
import { NodeSessionNotFound, SessionNotFound } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { LiveSessionError } from "./LiveSession.ts"

/**
 * A guest port made reachable on control at `/p/{id}/`, for as long as the session runs. Access:
 * `token` (a bearer secret, or `?token=` once, then a cookie), `pin` (digits typed into a form,
 * attempts limited, then a cookie), `public` (anyone with the URL), `sso` (a console sign-in with
 * `read` on the session's project; a browser without one is sent through the OIDC login).
 */
export const portAccessModes = ["token", "pin", "public", "sso"] as const
export const PortAccess = Schema.Literals(portAccessModes).annotate({ identifier: "PortAccess" })
export type PortAccess = typeof PortAccess.Type

export const pinDigits = 8
/** Wrong PINs in a row that lock an exposure, and for how long. */
export const pinMaxFailures = 5
export const pinLockoutMs = 15 * 60 * 1000
export const exposurePathPrefix = "/p/"

export const ExposePort = Schema.Struct({
  port: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))),
  access: PortAccess,
}).annotate({ identifier: "ExposePort" })
export type ExposePort = typeof ExposePort.Type

export const PortExposureView = Schema.Struct({
  port: Schema.Int,
  access: PortAccess,
  /** Path form on control: `/p/{id}/`, prefixed with the control URL the request came to. */
  url: Schema.String,
  /** Host form `https://{port}-{id}.{PAWS_PUBLIC_DOMAIN}/`, when control has a public domain: its own origin. */
  hostUrl: Schema.optionalKey(Schema.String),
  createdAt: Schema.String,
}).annotate({ identifier: "PortExposure" })
export type PortExposureView = typeof PortExposureView.Type

/** The exposure with its secret, in the create response only: never stored in clear, never shown again. */
export const CreatedPortExposure = Schema.Struct({
  ...PortExposureView.fields,
  token: Schema.optionalKey(Schema.String),
  pin: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "CreatedPortExposure" })
export type CreatedPortExposure = typeof CreatedPortExposure.Type

export class PortsApi extends HttpApiGroup.make("ports")
  .add(
    HttpApiEndpoint.post("expose", "/:id/ports", {
      params: { id: SessionId },
      payload: ExposePort,
      success: CreatedPortExposure.pipe(HttpApiSchema.status(201)),
      error: [SessionNotFound, SessionNotLive],
    }).pipe(scoped(
      "sessions:write",
      "Expose a guest port",
      "Makes the session's guest `port` reachable over HTTP, SSE and WebSocket at `url` on control, through the node " +
        "(the guest still cannot dial out). `access`: `token` (the response's `token` as `Authorization: Bearer`, " +
        "or `?token=` once, which sets a cookie), `pin` (the response's 8-digit `pin`, posted to `url` as " +
        `\`pin=…\`; ${pinMaxFailures} wrong PINs lock it for ${
          pinLockoutMs / 60_000
        } minutes), \`sso\` (the console's ` +
        "sign-in, with scope `read` on the session's project; a browser without one is sent through the OIDC login " +
        "and back), or `public`. " +
        "The token or PIN is shown only here. The exposure ends with the session (404 after).",
    )),
    HttpApiEndpoint.get("list", "/:id/ports", {
      params: { id: SessionId },
      success: Schema.Array(PortExposureView),
      error: SessionNotFound,
    }).pipe(scoped("read", "List a session's exposed ports")),
  )
  .prefix("/v1/sessions")
  .annotateMerge(OpenApi.annotations({ description: "Exposed ports: a guest's web app behind access control." })) {}

/** One HTTP request relayed to a guest port: control → node → guest. */
export const ForwardToPort = Rpc.make("ForwardToPort", {
  payload: {
    sessionId: SessionId,
    port: ExposePort.fields.port,
    method: Schema.String,
    path: Schema.String,
    headers: Schema.Array(Schema.Tuple([Schema.String, Schema.String])),
    body: Schema.Uint8ArrayFromBase64,
  },
  success: Schema.Union([
    Schema.TaggedStruct("head", {
      status: Schema.Int,
      headers: Schema.Array(Schema.Tuple([Schema.String, Schema.String])),
    }),
    Schema.TaggedStruct("body", { data: Schema.Uint8ArrayFromBase64 }),
  ]),
  error: Schema.Union([NodeSessionNotFound, LiveSessionError]),
  stream: true,
})

/** One WebSocket message, either way. */
export const PortSocketMessage = Schema.Struct({ data: Schema.Uint8ArrayFromBase64, text: Schema.Boolean })
  .annotate({ identifier: "PortSocketMessage" })
export type PortSocketMessage = typeof PortSocketMessage.Type

/**
 * A WebSocket to a guest port, opened by the node (its own client, in its netns): the guest's
 * messages stream back until either side closes; interrupting the stream closes it.
 */
export const OpenPortSocket = Rpc.make("OpenPortSocket", {
  payload: {
    sessionId: SessionId,
    port: ExposePort.fields.port,
    socketId: Schema.String.pipe(Schema.check(Schema.isBetweenLength(8, 64))),
    path: Schema.String,
    cookie: Schema.optionalKey(Schema.String),
  },
  success: PortSocketMessage,
  error: Schema.Union([NodeSessionNotFound, LiveSessionError]),
  stream: true,
})

/** A message from the browser to an open port socket. */
export const SendPortSocket = Rpc.make("SendPortSocket", {
  payload: { socketId: Schema.String, message: PortSocketMessage },
  error: LiveSessionError,
})
