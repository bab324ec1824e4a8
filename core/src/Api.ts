import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { AuditApi } from "./ApiAudit.ts"
import { ApiKey, ApiKeyId, ApiKeyNotFound, CreateApiKey, CreatedApiKey, UpdateApiKey } from "./ApiKeys.ts"
import { ApprovalsApi } from "./ApiApprovals.ts"
import { ConsoleAuthApi } from "./ApiConsoleAuth.ts"
import { DaemonHistoryApi } from "./ApiDaemonHistory.ts"
import { ApiAuth, RequestValidation } from "./ApiMiddleware.ts"
import { McpServersApi } from "./ApiMcp.ts"
import { ProjectsApi } from "./ApiProjects.ts"
import { RateLimited } from "./Limits.ts"
import { ProjectNotFound } from "./Project.ts"
import { NodeTokensApi } from "./ApiNodeTokens.ts"
import { scoped } from "./ApiScoped.ts"
import { DaemonsApi } from "./ApiDaemons.ts"
import { HooksApi } from "./ApiHooks.ts"
import { DaemonName } from "./Daemon.ts"
import { SnapshotsApi } from "./ApiSnapshots.ts"
import { SessionExecApi } from "./ApiLiveSessions.ts"
import { SessionPauseApi } from "./ApiSessionPause.ts"
import { PortsApi } from "./PortExposure.ts"
import {
  Forbidden,
  IdempotencyConflict,
  IllegalTransition,
  NodeNotFound,
  ServiceUnavailable,
  SessionNotFound,
  SnapshotUnavailable,
} from "./Errors.ts"
import { NodeId, SessionId } from "./Ids.ts"
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
      error: [IdempotencyConflict, SnapshotUnavailable, RateLimited],
    }).pipe(scoped(
      "sessions:write",
      "Create a session",
      "Queue a session. Credential header values go to the vault and are never returned. " +
        "With an `Idempotency-Key` header a retried request returns the first session; the same key " +
        "with a different body is a 409. A key's or project's concurrent-session or daily session-minute " +
        "limit answers 429 with `Retry-After` and the limit's name. With `requiresApproval: true` the session " +
        "waits in `awaiting_approval` until approved (POST /v1/sessions/{id}/approve). " +
        "A session runs only on a node holding its snapshot ready and carrying every label of its `nodeSelector`; " +
        "when nodes are connected and none holds (or is building) the snapshot, the request is a 409 naming it. " +
        "Credential secrets must be at least 8 characters (an auth scheme such as `Bearer ` not counted); a credential on a `*.` pattern needs `network.allowWildcardCredential: true`, and over a public suffix (`*.co.uk`, `*.github.io`) the response carries a `warnings` entry.",
    )),
    HttpApiEndpoint.get("list", "/", {
      query: {
        status: Schema.optional(SessionStatus),
        limit: Schema.optional(Limit),
        cursor: Schema.optional(SessionId),
        /** Only the invocations of this daemon. */
        daemon: Schema.optional(DaemonName),
        /** Only the sessions placed on this node. */
        node: Schema.optional(NodeId),
      },
      success: SessionPage,
    }).pipe(scoped("read", "List sessions", "List sessions, newest first, optionally by status, daemon or node.")),
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
      "Server-Sent Events: every stored event of the session (event name = `status`, `output`, `audit`, " +
        "`mcp` (an MCP tool call through the gateway) or `result`; data = the SessionEvent as JSON; id = a resumable event id), then live events until the " +
        "session ends. Send `Last-Event-ID` to resume after an event.",
    )),
  )
  .prefix("/v1/sessions")
  .annotateMerge(OpenApi.annotations({ description: "Sessions: one workload in one ephemeral microVM." })) {}

export class NodesApi extends HttpApiGroup.make("nodes")
  .add(
    HttpApiEndpoint.get("list", "/v1/nodes", { success: Schema.Array(NodeInfo) })
      .pipe(scoped(
        "read",
        "List nodes",
        "Every control replica's nodes (each replica publishes its own every heartbeat), their free capacity, " +
          "labels and what they can run.",
      )),
    HttpApiEndpoint.put("drain", "/v1/nodes/drained/:id", {
      params: { id: NodeId },
      success: NodeInfo,
      error: NodeNotFound,
    })
      .pipe(scoped(
        "admin",
        "Drain a node",
        "The node takes no new sessions and finishes the ones it runs; it shows as `draining`. " +
          "Kept in the database: it holds across control restarts and replicas, and when the node reconnects.",
      )),
    HttpApiEndpoint.delete("undrain", "/v1/nodes/drained/:id", {
      params: { id: NodeId },
      success: NodeInfo,
      error: NodeNotFound,
    }).pipe(scoped("admin", "Undrain a node", "The node takes new sessions again.")),
  )
  .annotateMerge(OpenApi.annotations({ description: "Nodes: the hosts that run the microVMs." })) {}

export class KeysApi extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: CreateApiKey,
      success: CreatedApiKey.pipe(HttpApiSchema.status(201)),
      error: [ProjectNotFound, Forbidden],
    }).pipe(scoped(
      "admin",
      "Create an API key",
      "The secret is in this response only; it is stored hashed. The key belongs to `project` (default: the " +
        "caller's); only an instance admin (admin key of `default`) may name another project.",
    )),
    HttpApiEndpoint.patch("update", "/:id", {
      params: { id: ApiKeyId },
      payload: UpdateApiKey,
      success: ApiKey,
      error: ApiKeyNotFound,
    }).pipe(
      scoped("admin", "Change an API key's limits", "Requests per second (token bucket) and concurrent sessions."),
    ),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(ApiKey) })
      .pipe(scoped(
        "admin",
        "List API keys",
        "List API keys (never their secrets): an instance admin sees every project's, others their project's.",
      )),
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
      .annotateMerge(doc("Readiness", "The database answers and holds this build's newest migration. No auth.")),
  )
  .annotateMerge(OpenApi.annotations({ description: "Health probes for load balancers and orchestrators." })) {}

/** The paws control-plane REST API. Everything but health requires an API key. */
export class Api extends HttpApi.make("paws")
  .add(SessionsApi)
  .add(NodesApi)
  .add(NodeTokensApi)
  .add(SnapshotsApi)
  .add(DaemonsApi)
  .add(McpServersApi)
  .add(SessionExecApi)
  .add(SessionPauseApi)
  .add(PortsApi)
  .add(KeysApi)
  .add(AuditApi)
  .add(ProjectsApi)
  .add(ApprovalsApi)
  .add(MetricsApi)
  .add(DaemonHistoryApi)
  .middleware(ApiAuth)
  .add(HealthApi)
  .add(ConsoleAuthApi)
  .add(HooksApi)
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
