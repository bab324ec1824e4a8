import { NodeInfo } from "@paws/core"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { controlSettings } from "./ControlConfig.ts"
import { NodeRegistry } from "./NodeRegistry.ts"
import { ReplicaLease } from "./ReplicaLease.ts"
import { json } from "./Rows.ts"

const decodeInfo = Schema.decodeUnknownOption(NodeInfo)

/**
 * Every replica's nodes, for every replica. A node is linked to one replica (whichever it called
 * home to, or which dialled it); that replica publishes what its registry knows (connected and lost
 * nodes) to PostgreSQL every heartbeat, so `GET /v1/nodes`, placement checks and drains on any
 * replica see all of them. A row no replica has refreshed for three heartbeats (its replica is gone)
 * is not shown. Dispatch stays with the replica that holds the node's link.
 */
export class NodePresence extends Context.Service<NodePresence, {
  /** This replica's nodes (as its registry has them), then the other replicas' fresh ones. */
  readonly all: Effect.Effect<ReadonlyArray<NodeInfo>>
}>()("paws/control/NodePresence") {
  static readonly layer = Layer.effect(
    NodePresence,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const registry = yield* NodeRegistry
      const lease = yield* ReplicaLease
      const heartbeatMs = yield* Effect.orDie(controlSettings.heartbeatMs.config)
      const freshSeconds = (heartbeatMs * 3) / 1000

      const publish = Effect.gen(function* () {
        for (const info of yield* registry.all) {
          // A node this replica lost may have moved to another: its fresh row there is not overwritten.
          const mayReplace = info.status === "lost"
            ? sql`WHERE node_presence.replica = ${lease.id}
                OR node_presence.seen_at < now() - make_interval(secs => ${freshSeconds})`
            : sql``
          yield* sql`INSERT INTO node_presence (node_id, replica, info, seen_at)
            VALUES (${info.id}, ${lease.id}, ${JSON.stringify(info)}::jsonb, now())
            ON CONFLICT (node_id) DO UPDATE SET replica = EXCLUDED.replica, info = EXCLUDED.info, seen_at = now()
            ${mayReplace}`
        }
        yield* sql`DELETE FROM node_presence WHERE seen_at < now() - interval '1 day'`
      }).pipe(Effect.orDie)

      yield* publish
      yield* publish.pipe(
        Effect.catchCause((cause) => Effect.logWarning("publishing this replica's nodes failed", cause)),
        Effect.repeat(Schedule.spaced(Math.max(100, heartbeatMs))),
        Effect.forkScoped,
      )

      const all = Effect.gen(function* () {
        const rows = yield* sql<{ node_id: string; info: unknown }>`SELECT node_id, info FROM node_presence
          WHERE replica <> ${lease.id} AND seen_at > now() - make_interval(secs => ${freshSeconds})`.pipe(Effect.orDie)
        const byId = new Map<string, NodeInfo>()
        for (const r of rows) {
          const info = decodeInfo(json(r.info))
          if (info._tag === "Some") byId.set(r.node_id, info.value)
        }
        // This replica's view wins, except that a node it lost but another replica has live is shown live.
        for (const mine of yield* registry.all) {
          const other = byId.get(mine.id)
          if (mine.status !== "lost" || other === undefined || other.status === "lost") byId.set(mine.id, mine)
        }
        return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      })

      return NodePresence.of({ all })
    }),
  )
}
