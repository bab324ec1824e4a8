import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import { NodeHttpServer } from "@effect/platform-node"
import { Api } from "@paws/core"
import { createServer } from "node:http"
import { ApiKeys } from "./ApiKeys.ts"
import { Approvals } from "./Approvals.ts"
import { EgressApprovals } from "./EgressApprovals.ts"
import { LimitCounter } from "./LimitCounter.ts"
import { Projects } from "./Projects.ts"
import { Quotas } from "./Quotas.ts"
import { ControlConfig } from "./ControlConfig.ts"
import { Database } from "./Database.ts"
import { Dispatcher } from "./Dispatcher.ts"
import { EventFeed } from "./EventFeed.ts"
import { MemoryStore } from "./MemoryStore.ts"
import { Metrics } from "./Metrics.ts"
import { LiveGateway } from "./LiveGateway.ts"
import { McpServers } from "./McpServers.ts"
import { NodeGateway } from "./NodeGateway.ts"
import { ReplicaLease } from "./ReplicaLease.ts"
import { NodeDrains } from "./NodeDrains.ts"
import { NodePresence } from "./NodePresence.ts"
import { NodeRegistry } from "./NodeRegistry.ts"
import { NodeTokens } from "./NodeTokens.ts"
import { PrivateDataDir } from "./PrivateFiles.ts"
import { QueueSignal } from "./QueueSignal.ts"
import { Sessions } from "./Sessions.ts"
import { SessionStore } from "./SessionStore.ts"
import { SessionOwnership } from "./SessionOwnership.ts"
import { SnapshotProjects } from "./SnapshotProjects.ts"
import { Snapshots } from "./Snapshots.ts"
import { StaticNodes } from "./StaticNodes.ts"
import { KubernetesNodes } from "./KubernetesNodes.ts"
import { Vault } from "./Vault.ts"
import { DaemonServices } from "./daemons/DaemonServices.ts"
import { AuditLog } from "./audit/AuditLog.ts"
import { AuditHttp } from "./http/AuditHttp.ts"
import { ConsoleAssets } from "./http/ConsoleAssets.ts"
import { ApiAuthLive } from "./http/ApiAuthLive.ts"
import { DaemonHistoryHttp } from "./http/DaemonHistoryHttp.ts"
import { DaemonsHttp } from "./http/DaemonsHttp.ts"
import { HooksHttp } from "./http/HooksHttp.ts"
import { HttpObserver } from "./http/HttpObserver.ts"
import { ApprovalsHttp } from "./http/ApprovalsHttp.ts"
import { KeysHttp } from "./http/KeysHttp.ts"
import { McpServersHttp } from "./http/McpServersHttp.ts"
import { ProjectsHttp } from "./http/ProjectsHttp.ts"
import { NodeTokensHttp } from "./http/NodeTokensHttp.ts"
import { RequestValidationLive } from "./http/RequestValidationLive.ts"
import { SessionExecHttp } from "./http/SessionExecHttp.ts"
import { SessionPauseHttp } from "./http/SessionPauseHttp.ts"
import { exposureHosts } from "./http/ExposureProxy.ts"
import { ExposureListener } from "./exposure/ExposureListener.ts"
import { ExposurePathRedirect } from "./exposure/ExposurePathRedirect.ts"
import { PortsHttp } from "./http/PortsHttp.ts"
import { ShellGateway } from "./http/ShellGateway.ts"
import { PortExposures } from "./PortExposures.ts"
import { ConsoleSessions } from "./console/ConsoleSessions.ts"
import { ConsoleConfig } from "./console/ConsoleConfig.ts"
import { AuthHttp } from "./http/AuthHttp.ts"
import { OidcHttp } from "./http/OidcHttp.ts"
import { PortGrantHttp } from "./http/PortGrantHttp.ts"
import { OidcLogin } from "./oidc/OidcLogin.ts"
import { OidcConfig } from "./oidc/OidcConfig.ts"
import { SessionsHttp } from "./http/SessionsHttp.ts"
import { SnapshotsHttp } from "./http/SnapshotsHttp.ts"
import { HealthHttp, MetricsHttp, NodesHttp } from "./http/SystemHttp.ts"

/** The services behind the API, on the configured database, with the first admin key ensured. */
export const ControlServices = Layer.mergeAll(
  Sessions.layer,
  Snapshots.layer,
  PortExposures.layer,
  ConsoleSessions.layer.pipe(Layer.provideMerge(ConsoleConfig.layer)),
  OidcLogin.layer.pipe(Layer.provideMerge(OidcConfig.layer)),
).pipe(
  Layer.provideMerge(Layer.mergeAll(Dispatcher.layer, Approvals.layer, Quotas.layer, NodePresence.layer)),
  Layer.provideMerge(Layer.mergeAll(LimitCounter.layer, EgressApprovals.layer, SnapshotProjects.layer)),
  Layer.provideMerge(Projects.layer),
  Layer.provideMerge(ApiKeys.layer),
  Layer.provideMerge(ReplicaLease.layer),
  Layer.provideMerge(MemoryStore.layer),
  Layer.provideMerge(McpServers.layer),
  Layer.provideMerge(
    Layer.mergeAll(
      SessionStore.layer,
      SessionOwnership.layer,
      NodeRegistry.layer,
      Vault.layer,
      NodeTokens.layer,
      NodeDrains.layer,
    ),
  ),
  Layer.provideMerge(Layer.mergeAll(QueueSignal.layer, EventFeed.layer, Metrics.layer, AuditLog.layer)),
  Layer.provideMerge(Database),
  // Before the database opens anything in it.
  Layer.provide(PrivateDataDir),
)

const bootstrap = Layer.effectDiscard(Effect.gen(function* () {
  const keys = yield* ApiKeys
  yield* keys.bootstrap
}))

const routes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide([
      SessionsHttp,
      KeysHttp,
      NodesHttp,
      NodeTokensHttp,
      MetricsHttp,
      HealthHttp,
      SnapshotsHttp,
      DaemonsHttp,
      HooksHttp,
      DaemonHistoryHttp,
      McpServersHttp,
      AuditHttp,
      ProjectsHttp,
      ApprovalsHttp,
      SessionExecHttp,
      SessionPauseHttp,
      PortsHttp,
      AuthHttp,
    ]),
  ),
  HttpApiScalar.layer(Api, { path: "/docs" }),
  HttpObserver,
  NodeGateway,
  LiveGateway,
  ExposurePathRedirect,
  ShellGateway,
  OidcHttp,
  PortGrantHttp,
  StaticNodes,
  KubernetesNodes,
  ConsoleAssets,
)

/**
 * The whole control plane: HTTP API on PAWS_HOST:PAWS_PORT, database, dispatcher. Tests and
 * `paws up` start it with their own ConfigProvider (e.g. port 0 and a temp data dir) and read
 * the bound address from `HttpServer`.
 */
export const ControlServer = Layer.unwrap(Effect.gen(function* () {
  const config = yield* ControlConfig
  return HttpRouter.serve(routes, {
    disableLogger: !config.logRequests,
    middleware: exposureHosts(config.publicDomain),
  }).pipe(
    Layer.provide([ApiAuthLive, RequestValidationLive]),
    // Path-form exposed ports: their own listener, another origin than control's (and the console's).
    Layer.provideMerge(ExposureListener.layer),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { host: config.host, port: config.port })),
  )
})).pipe(
  Layer.provideMerge(bootstrap),
  Layer.provideMerge(DaemonServices),
  Layer.provideMerge(ControlServices),
  Layer.provideMerge(ControlConfig.layer),
)

/** The base URL (`http://host:port`) the server is listening on. */
export const serverUrl = Effect.gen(function* () {
  const { address } = yield* HttpServer.HttpServer
  if (address._tag === "UnixPathAddress") return `http+unix://${address.path}`
  return `http://${NetAddress.formatInet(address)}`
})
