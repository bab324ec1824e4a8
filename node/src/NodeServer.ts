import { Effect, Layer, Option, Redacted, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { Schema } from "effect"
import { NodeHttpServer } from "@effect/platform-node"
import { NodeId, NodeRpcs, SnapshotBuildFailed } from "@paws/core"
import { createServer } from "node:http"
import { timingSafeEqual } from "node:crypto"
import { NodeConfig } from "./NodeConfig.ts"
import { LiveSessions } from "./session/LiveSessions.ts"
import { ImageStore } from "./image/ImageStore.ts"
import { NodeSnapshots } from "./snapshot/NodeSnapshots.ts"
import { placementReport } from "./snapshot/PlacementReport.ts"

export const NodeRpcHandlers = NodeRpcs.toLayer(Effect.gen(function* () {
  const sessions = yield* LiveSessions
  const config = yield* NodeConfig
  const id = Schema.decodeSync(NodeId)(config.id)
  // Optional: a node composed without snapshot services (some tests) says so instead of building.
  const snapshots = yield* Effect.serviceOption(NodeSnapshots)
  const images = yield* Effect.serviceOption(ImageStore)
  const noSnapshots = (name: string) =>
    new SnapshotBuildFailed({ snapshot: name, message: `node ${config.id} cannot build snapshots` })
  return {
    RunSession: (dispatch) => sessions.run(dispatch),
    AttachSession: ({ sessionId }) => sessions.attach(sessionId),
    BuildSnapshot: (request) =>
      Option.isSome(snapshots) ? snapshots.value.build(request) : Stream.fail(noSnapshots(request.name)),
    ListSnapshots: () => Option.isSome(snapshots) ? snapshots.value.list : Effect.succeed([]),
    DeleteSnapshot: ({ name }) =>
      Option.isSome(snapshots)
        ? Effect.map(snapshots.value.remove(name), (removed) => ({ removed }))
        : Effect.succeed({ removed: false }),
    CancelSession: ({ sessionId }) => sessions.cancel(sessionId),
    PauseSession: ({ sessionId }) => sessions.pause(sessionId),
    DecideEgress: ({ sessionId, requestId, approve }) =>
      Effect.map(sessions.decideEgress(sessionId, requestId, approve), (delivered) => ({ delivered })),
    ExecInSession: ({ sessionId, command, stdin }) => sessions.exec(sessionId, command, stdin),
    ReadSessionFile: ({ sessionId, path }) => Effect.map(sessions.readFile(sessionId, path), (data) => ({ data })),
    WriteSessionFile: ({ sessionId, path, data }) => sessions.writeFile(sessionId, path, data),
    ForwardToPort: ({ sessionId, ...request }) => sessions.forward(sessionId, request),
    OpenPortSocket: ({ sessionId, ...request }) => sessions.openSocket(sessionId, request),
    SendPortSocket: ({ socketId, message }) => sessions.sendSocket(socketId, message),
    OpenShell: ({ sessionId, shellId, size }) => sessions.openShell(sessionId, shellId, size),
    ShellInput: ({ shellId, data, resize }) => sessions.shellInput(shellId, data, resize),
    NodeStatus: () =>
      Effect.gen(function* () {
        const { maxConcurrent, running, basis } = yield* sessions.capacity
        // What placement needs: which snapshots run here now, and which are on their way.
        const held = Option.isSome(images)
          ? placementReport(
            yield* images.value.names,
            Option.isSome(snapshots) ? yield* snapshots.value.list : [],
          )
          : undefined
        return {
          id,
          name: config.id,
          capacity: { maxConcurrent, running, available: Math.max(0, maxConcurrent - running), basis },
          status: "ready" as const,
          labels: config.labels,
          ...(held === undefined ? {} : { snapshots: held }),
          pausedSessions: yield* sessions.pausedIds,
        }
      }),
  }
}))

const sameSecret = (given: string, expected: string): boolean => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  // An empty expected token authorizes nobody (NodeStartChecks refuses it at start too).
  return b.length > 0 && a.length === b.length && timingSafeEqual(a, b)
}

/** Refuses every request (including the WebSocket upgrade) without `Authorization: Bearer <PAWS_NODE_TOKEN>`. */
const requireBearer = (token: Redacted.Redacted<string>) =>
<E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const header = request.headers["authorization"] ?? ""
    const given = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : ""
    if (!sameSecret(given, Redacted.value(token))) {
      return HttpServerResponse.text("unauthorized", { status: 401 })
    }
    return yield* app
  })

/** The control↔node RPC (`NodeRpcs`) over WebSocket + NDJSON at `/rpc`, bearer-token protected; needs an HttpServer. */
export const NodeRpcRoutes = Layer.unwrap(Effect.gen(function* () {
  const config = yield* NodeConfig
  const rpc = RpcServer.layerHttp({ group: NodeRpcs, path: "/rpc", protocol: "websocket" }).pipe(
    Layer.provide([NodeRpcHandlers, RpcSerialization.layerNdjson]),
  )
  return HttpRouter.serve(rpc, { middleware: requireBearer(config.token), disableLogger: true })
}))

/** NodeRpcRoutes on a Node HTTP server at PAWS_NODE_HOST:PAWS_NODE_PORT. */
export const NodeServer = Layer.unwrap(Effect.gen(function* () {
  const config = yield* NodeConfig
  return NodeRpcRoutes.pipe(
    Layer.provide(
      // Open RPC sockets must not hold a stopping node for long; sessions are torn down either way.
      NodeHttpServer.layer(createServer, {
        port: config.port,
        host: config.host,
        gracefulShutdownTimeout: "2 seconds",
      }),
    ),
  )
}))
