import { Effect, Layer } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { NodeSocket } from "@effect/platform-node"
import { NodeRpcs } from "@paws/core"

/** An RPC client for a node at `url`, sending `token` as the bearer; lives as long as the caller's scope. */
export const nodeClient = (url: string, token?: string) =>
  Effect.gen(function* () {
    const protocol = yield* Layer.build(
      RpcClient.layerProtocolSocket({ retryTransientErrors: false }).pipe(
        Layer.provide(
          NodeSocket.layerWebSocket(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
        ),
        Layer.provide(RpcSerialization.layerNdjson),
      ),
    )
    return yield* RpcClient.make(NodeRpcs).pipe(Effect.provideContext(protocol))
  })
