import { NodeSocket } from "@effect/platform-node"
import { nodeConnectUrl, nodeIdHeader, NodeRpcs } from "@paws/core"
import { Cause, Effect, Layer, Option, Redacted } from "effect"
import { NetAddress } from "effect/net"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { Socket, SocketServer } from "effect/socket"
import { NodeConfig } from "./NodeConfig.ts"
import { NodeRpcHandlers } from "./NodeServer.ts"

/**
 * `socket`, whose reads fail when control has sent nothing for `silentMs` (control pings and
 * asks NodeStatus every heartbeat). The RPC server then drops the connection, which
 * interrupts every RunSession on it: a node cut off from control stops its VMs, because
 * control has failed those sessions (`node_lost`) by then and will not take them back.
 */
const watchdog = (socket: Socket.Socket, silentMs: number, onOpen: () => void): Socket.Socket =>
  Socket.make({
    writer: socket.writer,
    reader: Effect.map(socket.reader, (reader) => {
      onOpen()
      return {
        ...reader,
        pull: reader.pull.pipe(
          Effect.timeoutOrElse({
            duration: silentMs,
            orElse: () =>
              Effect.fail(
                new Socket.SocketError({
                  reason: new Socket.SocketReadError({ cause: new Error(`control silent for ${silentMs} ms`) }),
                }),
              ),
          }),
        ),
      }
    }),
  })

/**
 * A SocketServer whose "connections" are the ones the node dials: `run(handler)` connects to
 * control's `/v1/nodes/connect` with the node token and id, hands the socket to `handler`
 * (the RPC server), and redials with backoff (0.5 s doubling to 30 s; reset after a link that
 * opened) when it drops or is refused.
 */
const CallHomeSocketServer = Layer.effect(
  SocketServer.SocketServer,
  Effect.gen(function* () {
    const config = yield* NodeConfig
    const makeWs = yield* Socket.WebSocketConstructor
    const url = nodeConnectUrl(Option.getOrThrow(config.controlUrl))
    const headers = { authorization: `Bearer ${Redacted.value(config.token)}`, [nodeIdHeader]: config.id }
    return SocketServer.SocketServer.of({
      // Nothing listens: the node only dials out.
      address: NetAddress.socketAddressFromInputUnsafe({ address: "0.0.0.0", port: 0 }),
      run: (handler) =>
        Effect.gen(function* () {
          let delay = 500
          while (true) {
            let opened = false
            const socket = yield* Socket.makeWebSocket(url, { headers, openTimeout: 10_000 }).pipe(
              Effect.provideService(Socket.WebSocketConstructor, makeWs),
            )
            const exit = yield* Effect.exit(handler(watchdog(socket, config.lostAfterMs, () => {
              opened = true
            })))
            if (opened) {
              delay = 500
              yield* Effect.logWarning("control link lost; live sessions were stopped; reconnecting").pipe(
                Effect.annotateLogs({ control: url }),
              )
            } else {
              const reason = exit._tag === "Failure" ? Cause.pretty(exit.cause).split("\n")[0] : "closed"
              yield* Effect.logWarning(
                "cannot reach control (401: wrong or revoked PAWS_NODE_TOKEN; 403: the token is bound to another " +
                  "PAWS_NODE_ID; 409: a node with this id is connected already)",
              )
                .pipe(Effect.annotateLogs({ control: url, reason, retryInMs: delay }))
            }
            yield* Effect.sleep(delay)
            if (!opened) delay = Math.min(delay * 2, 30_000)
          }
        }),
    })
  }),
)

/**
 * Call-home: the node serves NodeRpcs over its outbound WebSocket to control. Needs the
 * node services (LiveSessions, NodeConfig) like NodeServer.
 */
export const CallHome = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* NodeConfig
    yield* Effect.logInfo(`paws node ${config.id}: calling home`).pipe(
      Effect.annotateLogs({ control: nodeConnectUrl(Option.getOrThrow(config.controlUrl)) }),
    )
  }),
).pipe(
  Layer.provideMerge(RpcServer.layer(NodeRpcs)),
  Layer.provide([NodeRpcHandlers, RpcServer.layerProtocolSocketServer]),
  Layer.provide(CallHomeSocketServer),
  Layer.provide([RpcSerialization.layerNdjson, NodeSocket.layerWebSocketConstructor]),
)
