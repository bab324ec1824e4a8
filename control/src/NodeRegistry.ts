import type { NodeInfo, NodeRpcs } from "@paws/core"
import { Context, Effect, Layer, type Scope } from "effect"
import type { RpcClient, RpcClientError } from "effect/rpc"
import { QueueSignal } from "./QueueSignal.ts"

/** An RPC client for one node, whatever carries it (WebSocket call-home, static URL, in-process test). */
export type NodeClient = RpcClient.FromGroup<typeof NodeRpcs, RpcClientError.RpcClientError>

export interface NodeEntry {
  readonly info: NodeInfo
  readonly client: NodeClient
}

/**
 * The nodes this control plane can dispatch to. A node is registered for the lifetime of a
 * scope (its connection) and removed when that closes; a later issue fills this from
 * call-home WebSocket connections.
 */
export class NodeRegistry extends Context.Service<NodeRegistry, {
  readonly register: (entry: NodeEntry) => Effect.Effect<void, never, Scope.Scope>
  readonly update: (info: NodeInfo) => Effect.Effect<void>
  readonly list: Effect.Effect<ReadonlyArray<NodeEntry>>
  readonly get: (id: string) => Effect.Effect<NodeEntry | undefined>
}>()("paws/control/NodeRegistry") {
  static readonly layer = Layer.effect(
    NodeRegistry,
    Effect.gen(function* () {
      const signal = yield* QueueSignal
      const nodes = new Map<string, NodeEntry>()
      return NodeRegistry.of({
        register: (entry) =>
          Effect.acquireRelease(
            Effect.sync(() => nodes.set(entry.info.id, entry)).pipe(
              Effect.andThen(Effect.logInfo("node registered").pipe(Effect.annotateLogs({ node: entry.info.id }))),
              Effect.andThen(signal.kick),
            ),
            () =>
              Effect.sync(() => {
                // `update` replaces the entry object; the client tells whether it is still this connection.
                if (nodes.get(entry.info.id)?.client === entry.client) nodes.delete(entry.info.id)
              }).pipe(Effect.andThen(Effect.logInfo("node gone").pipe(Effect.annotateLogs({ node: entry.info.id })))),
          ),
        update: (info) =>
          Effect.sync(() => {
            const entry = nodes.get(info.id)
            if (entry !== undefined) nodes.set(info.id, { ...entry, info })
          }).pipe(Effect.andThen(signal.kick)),
        list: Effect.sync(() => [...nodes.values()]),
        get: (id) => Effect.sync(() => nodes.get(id)),
      })
    }),
  )
}
