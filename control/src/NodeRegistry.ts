import type { NodeInfo, NodeRpcs } from "@paws/core"
import { Context, Data, Effect, Layer, type Scope } from "effect"
import { controlSettings } from "./ControlConfig.ts"
import type { RpcClient, RpcClientError } from "effect/rpc"
import { QueueSignal } from "./QueueSignal.ts"

/** An RPC client for one node, whatever carries it (WebSocket call-home, static URL, in-process test). */
export type NodeClient = RpcClient.FromGroup<typeof NodeRpcs, RpcClientError.RpcClientError>

export interface NodeEntry {
  readonly info: NodeInfo
  readonly client: NodeClient
}

/** A second connection claimed the id of a node that is still connected: refused, the first stays. */
export class NodeIdInUse extends Data.TaggedError("NodeIdInUse")<{ readonly message: string }> {}

/** How long a lost node stays listed (as `lost`) unless it comes back or is forgotten. */
export const lostRetentionConfig = controlSettings.lostRetentionMs.config

/** What a lost node shows: its last report, with nothing running and nothing free. */
const asLost = (info: NodeInfo): NodeInfo => ({
  ...info,
  status: "lost",
  capacity: { ...info.capacity, running: 0, available: 0 },
  lastSeenAt: info.lastSeenAt ?? new Date().toISOString(),
})

/**
 * The nodes this control plane can dispatch to. A node is registered for the lifetime of a
 * scope (its connection). When that closes the node is lost: it leaves the dispatchable set
 * (`list`, `get`) at once but stays in `all` with status `lost` and its last-seen time until
 * it registers again, is forgotten (token revoked), or PAWS_NODE_LOST_RETENTION_MS passes.
 * One connection per node id: while a node is connected, another link claiming its id is
 * refused (a stolen token or a copied PAWS_NODE_ID cannot take over its sessions); a node
 * whose old link is dead gets back in once control has noticed (PAWS_NODE_LOST_AFTER_MS).
 */
export class NodeRegistry extends Context.Service<NodeRegistry, {
  readonly register: (entry: NodeEntry) => Effect.Effect<void, NodeIdInUse, Scope.Scope>
  readonly update: (info: NodeInfo) => Effect.Effect<void>
  /** Connected nodes: the only ones the Dispatcher sees. */
  readonly list: Effect.Effect<ReadonlyArray<NodeEntry>>
  readonly get: (id: string) => Effect.Effect<NodeEntry | undefined>
  /** What `GET /v1/nodes` shows: connected nodes and lost ones still retained, by id. */
  readonly all: Effect.Effect<ReadonlyArray<NodeInfo>>
  /**
   * Records at once what a build or removal did to a node's snapshots (status undefined = gone), so
   * placement need not wait for the next heartbeat; nodes that do not report snapshots are left alone.
   */
  readonly noteSnapshot: (node: string, name: string, status: "ready" | "building" | undefined) => Effect.Effect<void>
  /** Drops a lost node from `all` (a connected one is untouched). */
  readonly forget: (id: string) => Effect.Effect<void>
}>()("paws/control/NodeRegistry") {
  static readonly layer = Layer.effect(
    NodeRegistry,
    Effect.gen(function* () {
      const signal = yield* QueueSignal
      const retentionMs = yield* Effect.orDie(lostRetentionConfig)
      const nodes = new Map<string, NodeEntry>()
      const lost = new Map<string, { readonly info: NodeInfo; readonly at: number }>()
      const prune = () => {
        const cutoff = Date.now() - retentionMs
        for (const [id, l] of lost) if (l.at < cutoff) lost.delete(id)
      }
      return NodeRegistry.of({
        register: (entry) =>
          Effect.acquireRelease(
            Effect.suspend(() => {
              if (nodes.has(entry.info.id)) {
                return Effect.fail(
                  new NodeIdInUse({
                    message: `node ${entry.info.id} is already connected; this second link is refused`,
                  }),
                )
              }
              lost.delete(entry.info.id)
              nodes.set(entry.info.id, entry)
              return Effect.void
            }).pipe(
              Effect.andThen(Effect.logInfo("node registered").pipe(Effect.annotateLogs({ node: entry.info.id }))),
              Effect.andThen(signal.kick),
            ),
            () =>
              Effect.suspend(() => {
                // `update` replaces the entry object; the client tells whether it is still this connection.
                const current = nodes.get(entry.info.id)
                if (current?.client !== entry.client) return Effect.void
                nodes.delete(entry.info.id)
                const info = asLost(current.info)
                lost.set(info.id, { info, at: Date.now() })
                return Effect.logWarning("node lost").pipe(
                  Effect.annotateLogs({ node: info.id, lastSeenAt: info.lastSeenAt }),
                )
              }),
          ),
        update: (info) =>
          Effect.sync(() => {
            const entry = nodes.get(info.id)
            if (entry !== undefined) nodes.set(info.id, { ...entry, info })
          }).pipe(Effect.andThen(signal.kick)),
        noteSnapshot: (id, name, status) =>
          Effect.sync(() => {
            const entry = nodes.get(id)
            if (entry?.info.snapshots === undefined) return
            const others = entry.info.snapshots.filter((s) => s.name !== name)
            const snapshots = status === undefined ? others : [...others, { name, status }]
            nodes.set(id, { ...entry, info: { ...entry.info, snapshots } })
          }).pipe(Effect.andThen(signal.kick)),
        list: Effect.sync(() => [...nodes.values()]),
        get: (id) => Effect.sync(() => nodes.get(id)),
        all: Effect.sync(() => {
          prune()
          const infos = [...[...nodes.values()].map((e) => e.info), ...[...lost.values()].map((l) => l.info)]
          return infos.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        }),
        forget: (id) =>
          Effect.suspend(() =>
            lost.delete(id)
              ? Effect.logInfo("lost node forgotten").pipe(Effect.annotateLogs({ node: id }))
              : Effect.void
          ),
      })
    }),
  )
}
