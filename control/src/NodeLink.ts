import { type NodeInfo, NodeRpcs } from "@paws/core"
import { Config, Data, Deferred, Effect, Exit, Scope } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket"
import { controlSettings } from "./ControlConfig.ts"
import { NodeRegistry } from "./NodeRegistry.ts"

/**
 * How often control asks a node for its status, how long a silent node lives on, and the most
 * sessions control runs on one node at once (unless its node token sets its own maxConcurrent).
 */
export const nodeLinkConfig = Config.all({
  heartbeatMs: controlSettings.heartbeatMs.config,
  lostAfterMs: controlSettings.lostAfterMs.config,
  maxConcurrent: controlSettings.nodeMaxConcurrent.config,
})

/** A node's report with its capacity cut to what control allows: a node cannot talk itself into more work. */
export const capCapacity = (info: NodeInfo, max: number): NodeInfo => {
  const maxConcurrent = Math.max(0, Math.min(info.capacity.maxConcurrent, max))
  const running = Math.max(0, info.capacity.running)
  const capped = maxConcurrent < info.capacity.maxConcurrent
  return {
    ...info,
    capacity: {
      ...info.capacity,
      ...(capped
        ? {
          basis:
            `${maxConcurrent} VMs: capped by control (PAWS_NODE_MAX_CONCURRENT or the node token's maxConcurrent; the node offers ${info.capacity.maxConcurrent})`,
        }
        : {}),
      maxConcurrent,
      running,
      available: Math.max(0, Math.min(info.capacity.available, maxConcurrent - running)),
    },
  }
}

export class NodeLinkRefused extends Data.TaggedError("NodeLinkRefused")<{ readonly message: string }> {}

/**
 * `socket`, whose reads fail once `kill` completes: the RPC protocol then fails in-flight
 * calls with an RpcClientError, exactly as when the node drops the connection.
 */
const killable = (socket: Socket.Socket, kill: Effect.Effect<void>): Socket.Socket =>
  Socket.make({
    writer: socket.writer,
    reader: Effect.map(socket.reader, (reader) => ({
      ...reader,
      pull: Effect.raceFirst(
        reader.pull,
        Effect.andThen(
          kill,
          Effect.fail(
            new Socket.SocketError({ reason: new Socket.SocketReadError({ cause: new Error("node link closed") }) }),
          ),
        ),
      ),
    })),
  })

/**
 * Runs control's side of one node connection, whoever dialled: control is the RPC client of
 * `NodeRpcs` over `socket`. The node is registered (with the capacity of its first
 * `NodeStatus`) until the socket drops or stays silent for `lostAfterMs` (the RPC pinger
 * sends a ping every `heartbeatMs` and counts any frame as life); a `NodeStatus` every
 * `heartbeatMs` keeps its capacity and last-seen time current. Then the registry lists it as
 * `lost` (never dispatched to) until it calls home again. When the link ends, the protocol has already
 * failed every in-flight RunSession with an RpcClientError, so the Dispatcher re-queues
 * sessions whose VM never ran and fails running ones with `node_lost`. Every report's capacity
 * is capped at `maxConcurrent` (else PAWS_NODE_MAX_CONCURRENT); a second link claiming the id of
 * a connected node is refused.
 */
export const runNodeLink = (
  socket: Socket.Socket,
  options: {
    readonly expectedId?: string
    readonly until?: Effect.Effect<void>
    readonly maxConcurrent?: number | null
  } = {},
): Effect.Effect<void, NodeLinkRefused, NodeRegistry> =>
  Effect.scoped(Effect.gen(function* () {
    const registry = yield* NodeRegistry
    const config = yield* Effect.orDie(nodeLinkConfig)
    const { heartbeatMs, lostAfterMs } = config
    const cap = options.maxConcurrent ?? config.maxConcurrent
    const gone = yield* Deferred.make<void>()
    // The registration ends in onDisconnect, which the protocol runs before it fails in-flight
    // calls: a lost node is gone from the registry before its sessions are failed or re-queued.
    const registration = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(registration, Exit.void))
    const onDisconnect = Effect.andThen(Scope.close(registration, Exit.void), Deferred.succeed(gone, undefined))
    // A link cut by its token's revocation ends the node's listing too: the admin is done with it.
    let revoked = false
    const until = Effect.tap(options.until ?? Effect.never, () => Effect.sync(() => (revoked = true)))
    const protocol = yield* RpcClient.makeProtocolSocket({
      pingInterval: heartbeatMs,
      pingTimeout: lostAfterMs,
      retryTransientErrors: false,
    }).pipe(
      Effect.provideService(Socket.Socket, killable(socket, until)),
      Effect.provideService(
        RpcClient.ConnectionHooks,
        RpcClient.ConnectionHooks.of({ onConnect: Effect.void, onDisconnect }),
      ),
      Effect.provide(RpcSerialization.layerNdjson),
    )
    const client = yield* RpcClient.make(NodeRpcs).pipe(Effect.provideService(RpcClient.Protocol, protocol))
    const status = client.NodeStatus().pipe(
      Effect.timeout(lostAfterMs),
      Effect.map((info): NodeInfo => capCapacity({ ...info, lastSeenAt: new Date().toISOString() }, cap)),
    )
    const info = yield* status.pipe(
      Effect.mapError((e) => new NodeLinkRefused({ message: `node did not report its status: ${e.message}` })),
    )
    if (options.expectedId !== undefined && info.id !== options.expectedId) {
      return yield* new NodeLinkRefused({
        message: `node says it is ${info.id} but connected as ${options.expectedId}`,
      })
    }
    const log = (message: string) => Effect.logInfo(message).pipe(Effect.annotateLogs({ node: info.id }))
    yield* registry.register({ info, client }).pipe(
      Scope.provide(registration),
      Effect.mapError((e) => new NodeLinkRefused({ message: e.message })),
    )
    yield* Effect.scoped(Effect.gen(function* () {
      yield* status.pipe(
        // The id is the one this link registered: a node cannot rewrite another node's entry.
        Effect.flatMap((next) => registry.update({ ...next, id: info.id })),
        Effect.catchCause((cause) =>
          Effect.logWarning("node heartbeat failed").pipe(Effect.annotateLogs({ node: info.id, cause }))
        ),
        Effect.delay(heartbeatMs),
        Effect.forever,
        Effect.forkScoped,
      )
      yield* Deferred.await(gone)
    }))
    yield* log("node link ended")
    if (revoked) yield* registry.forget(info.id)
    // The protocol delivers the RpcClientError to in-flight calls right after onDisconnect;
    // closing the client before that would interrupt them instead (no node_lost for the Dispatcher).
    yield* Effect.sleep(200)
  }))
