import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { ApiKey, ApiKeyId, ApiKeyNotFound, CreateApiKey, CreatedApiKey } from "./ApiKeys.ts"
import { ApiAuth, RequestValidation } from "./ApiMiddleware.ts"
import { NodeTokensApi } from "./ApiNodeTokens.ts"
import { scoped } from "./ApiScoped.ts"
import { SnapshotsApi } from "./ApiSnapshots.ts"
import { SessionExecApi } from "./ApiLiveSessions.ts"
import { PortsApi } from "./PortExposure.ts"
import { IdempotencyConflict, IllegalTransition, ServiceUnavailable, SessionNotFound } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { NodeInfo } from "./NodeInfo.ts"
import { Session } from "./Session.ts"
import { SessionSpec } from "./SessionSpec.ts"
import { SessionStatus } from "./SessionStatus.ts"

/** Response of `POST /v1/sessions`, shaped like the reference system's so its clients can switch. */
export const SessionAccepted = Schema.Struct({
  sessionId: SessionId,
  status: SessionStatus,
  /** Accepted, but worth a second look (e.g. a wildcard credential over a public suffix); absent when none. */
  warnings: Schema.optionalKey(Schema.Array(Schema.String)),
}).annotate({ identifier: "SessionAccepted" })
export type SessionAccepted = typeof SessionAccepted.Type

export const SessionPage = Schema.Struct({
  sessions: Schema.Array(Session),
  /** Pass as `cursor` to get the next (older) page; null on the last page. */
  nextCursor: Schema.NullOr(Schema.String),
}).annotate({ identifier: "SessionPage" })
export type SessionPage = typeof SessionPage.Type

export const maxPageSize = 200

const Limit = Schema.NumberFromString.pipe(
  Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxPageSize })),
)

const doc = (summary: string, description: string) => OpenApi.annotations({ summary, description })

export class SessionsApi extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: SessionSpec,
      headers: { "idempotency-key": Schema.optional(Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 255)))) },
      success: SessionAccepted.pipe(HttpApiSchema.status(202)),
      error: IdempotencyConflict,
    }).pipe(scoped(
      "sessions:write",
      "Create a session",
      "Queue a session. Credential header values go to the vault and are never returned. " +
        "With an `Idempotency-Key` header a retried request returns the first session; the same key " +
        "with a different body is a 409. " +
        "Credential secrets must be at least 8 characters (an auth scheme such as `Bearer ` not counted); a credential on a `*.` pattern needs `network.allowWildcardCredential: true`, and over a public suffix (`*.co.uk`, `*.github.io`) the response carries a `warnings` entry.",
    )),
    HttpApiEndpoint.get("list", "/", {
      query: {
        status: Schema.optional(SessionStatus),
        limit: Schema.optional(Limit),
        cursor: Schema.optional(SessionId),
      },
      success: SessionPage,
    }).pipe(scoped("read", "List sessions", "List sessions, newest first, optionally by status.")),
    HttpApiEndpoint.get("get", "/:id", {
      params: { id: SessionId },
      success: Session,
      error: SessionNotFound,
    }).pipe(scoped("read", "Get a session")),
    HttpApiEndpoint.delete("cancel", "/:id", {
      params: { id: SessionId },
      success: Session,
      error: [SessionNotFound, IllegalTransition],
    }).pipe(scoped(
      "sessions:write",
      "Cancel a session",
      "Cancel a session: a pending one leaves the queue, a running one is stopped on its node. " +
        "Cancelling a finished session is a 409.",
    )),
    HttpApiEndpoint.get("events", "/:id/events", {
      params: { id: SessionId },
      headers: {
        "last-event-id": Schema.optional(
          Schema.String.pipe(Schema.check(Schema.isPattern(/^[0-9]{1,18}$/, { message: "must be an event id" }))),
        ),
      },
      success: Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/event-stream" })),
      error: SessionNotFound,
    }).pipe(scoped(
      "read",
      "Stream a session's events",
      "Server-Sent Events: every stored event of the session (event name = `status`, `output`, `audit` or " +
        "`result`; data = the SessionEvent as JSON; id = a resumable event id), then live events until the " +
        "session ends. Send `Last-Event-ID` to resume after an event.",
    )),
  )
  .prefix("/v1/sessions")
  .annotateMerge(OpenApi.annotations({ description: "Sessions: one workload in one ephemeral microVM." })) {}

export class NodesApi extends HttpApiGroup.make("nodes")
  .add(
    HttpApiEndpoint.get("list", "/v1/nodes", { success: Schema.Array(NodeInfo) })
      .pipe(scoped("read", "List nodes", "Nodes known to this control plane and their free capacity.")),
  )
  .annotateMerge(OpenApi.annotations({ description: "Nodes: the hosts that run the microVMs." })) {}

export class KeysApi extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: CreateApiKey,
      success: CreatedApiKey.pipe(HttpApiSchema.status(201)),
    })
      .pipe(scoped("admin", "Create an API key", "The secret is in this response only; it is stored hashed.")),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(ApiKey) })
      .pipe(scoped("admin", "List API keys", "List API keys (never their secrets).")),
    HttpApiEndpoint.delete("revoke", "/:id", { params: { id: ApiKeyId }, success: ApiKey, error: ApiKeyNotFound })
      .pipe(scoped("admin", "Revoke an API key", "Revoke an API key; requests with it fail with 401 from then on.")),
  )
  .prefix("/v1/keys")
  .annotateMerge(OpenApi.annotations({ description: "API keys and their scopes (admin only)." })) {}

export class MetricsApi extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("metrics", "/metrics", {
      success: Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/plain; version=0.0.4" })),
    }).pipe(scoped("read", "Prometheus metrics", "Counters and gauges in the Prometheus text format.")),
  )
  .annotateMerge(OpenApi.annotations({ description: "Operational metrics." })) {}

const Health = Schema.Struct({ status: Schema.Literal("ok") }).annotate({ identifier: "Health" })

export class HealthApi extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("healthz", "/healthz", { success: Health })
      .annotateMerge(doc("Liveness", "The process serves HTTP. No auth.")),
    HttpApiEndpoint.get("readyz", "/readyz", { success: Health, error: ServiceUnavailable })
      .annotateMerge(doc("Readiness", "The database answers. No auth.")),
  )
  .annotateMerge(OpenApi.annotations({ description: "Health probes for load balancers and orchestrators." })) {}

/** The paws control-plane REST API. Everything but health requires an API key. */
export class Api extends HttpApi.make("paws")
  .add(SessionsApi)
  .add(NodesApi)
  .add(NodeTokensApi)
  .add(SnapshotsApi)
  .add(SessionExecApi)
  .add(PortsApi)
  .add(KeysApi)
  .add(MetricsApi)
  .middleware(ApiAuth)
  .add(HealthApi)
  .middleware(RequestValidation)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error", errors: "all" })
  .annotate(HttpApi.QueryParseOptions, { onExcessProperty: "error", errors: "all" })
  .annotateMerge(OpenApi.annotations({
    title: "paws control API",
    version: "1",
    servers: [{ url: "/", description: "the control plane serving this document" }],
    description: "Runs workloads in ephemeral microVMs; credentials are injected by a per-VM proxy and never " +
      "enter the VM. Authenticate with `Authorization: Bearer <API key>`.",
  })) {}
