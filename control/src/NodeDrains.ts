import type { NodeInfo } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/** How stale another replica's drain may be here: one dispatch pass reads at most this old a set. */
const refreshMs = 2_000

/**
 * Nodes an operator drained (`paws nodes drain`): they take no new sessions and finish what they
 * run. The set is a table, read through a short cache, so a drain holds across replicas, restarts
 * and reconnects of the node.
 */
export class NodeDrains extends Context.Service<NodeDrains, {
  readonly drain: (node: string) => Effect.Effect<void>
  readonly undrain: (node: string) => Effect.Effect<void>
  /** The node as placement and `GET /v1/nodes` should see it: `draining` when drained (lost stays lost). */
  readonly apply: (info: NodeInfo) => Effect.Effect<NodeInfo>
  readonly applyAll: (infos: ReadonlyArray<NodeInfo>) => Effect.Effect<ReadonlyArray<NodeInfo>>
}>()("paws/control/NodeDrains") {
  static readonly layer = Layer.effect(
    NodeDrains,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      let cached: { readonly at: number; readonly ids: ReadonlySet<string> } | undefined
      const drained = Effect.gen(function* () {
        if (cached !== undefined && Date.now() - cached.at < refreshMs) return cached.ids
        const rows = yield* sql<{ node_id: string }>`SELECT node_id FROM node_drains`.pipe(Effect.orDie)
        cached = { at: Date.now(), ids: new Set(rows.map((r) => r.node_id)) }
        return cached.ids
      })
      const mark = (info: NodeInfo, ids: ReadonlySet<string>): NodeInfo =>
        info.status === "ready" && ids.has(info.id) ? { ...info, status: "draining" } : info
      return NodeDrains.of({
        drain: (node) =>
          sql`INSERT INTO node_drains (node_id) VALUES (${node}) ON CONFLICT (node_id) DO NOTHING`.pipe(
            Effect.orDie,
            Effect.andThen(Effect.sync(() => (cached = undefined))),
            Effect.andThen(Effect.logInfo("node drained").pipe(Effect.annotateLogs({ node }))),
          ),
        undrain: (node) =>
          sql`DELETE FROM node_drains WHERE node_id = ${node}`.pipe(
            Effect.orDie,
            Effect.andThen(Effect.sync(() => (cached = undefined))),
            Effect.andThen(Effect.logInfo("node undrained").pipe(Effect.annotateLogs({ node }))),
          ),
        apply: (info) => Effect.map(drained, (ids) => mark(info, ids)),
        applyAll: (infos) => Effect.map(drained, (ids) => infos.map((i) => mark(i, ids))),
      })
    }),
  )
}
