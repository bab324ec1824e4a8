import { Api, NodeNotFound, ServiceUnavailable, sessionStatuses } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { Dispatcher } from "../Dispatcher.ts"
import { migrations } from "../Migrations.ts"
import { Metrics } from "../Metrics.ts"
import { NodeDrains } from "../NodeDrains.ts"
import { NodePresence } from "../NodePresence.ts"
import { NodeRegistry } from "../NodeRegistry.ts"
import { QueueSignal } from "../QueueSignal.ts"
import { SessionStore } from "../SessionStore.ts"

export const NodesHttp = HttpApiBuilder.group(
  Api,
  "nodes",
  Effect.fn(function* (handlers) {
    const presence = yield* NodePresence
    const drains = yield* NodeDrains
    const signal = yield* QueueSignal
    const known = (id: string) =>
      Effect.flatMap(presence.all, (all) => {
        const info = all.find((n) => n.id === id)
        return info === undefined
          ? Effect.fail(new NodeNotFound({ nodeId: id, message: `no node "${id}" is known to this control plane` }))
          : Effect.succeed(info)
      })
    return handlers
      .handle("list", () => Effect.flatMap(presence.all, drains.applyAll))
      .handle(
        "drain",
        ({ params }) => known(params.id).pipe(Effect.tap(() => drains.drain(params.id)), Effect.flatMap(drains.apply)),
      )
      .handle("undrain", ({ params }) =>
        known(params.id).pipe(
          Effect.tap(() => drains.undrain(params.id)),
          Effect.tap(() => signal.kick),
          Effect.flatMap(drains.apply),
        ))
  }),
)

export const MetricsHttp = HttpApiBuilder.group(
  Api,
  "metrics",
  Effect.fn(function* (handlers) {
    const metrics = yield* Metrics
    const store = yield* SessionStore
    const registry = yield* NodeRegistry
    const dispatcher = yield* Dispatcher
    return handlers.handle("metrics", () =>
      Effect.gen(function* () {
        const counts = yield* store.countByStatus
        const nodes = yield* registry.list
        const inflight = yield* dispatcher.inflight
        return metrics.render([
          {
            name: "paws_sessions",
            help: "Sessions in the database by status.",
            samples: sessionStatuses.map((status) => [{ status }, counts[status] ?? 0]),
          },
          { name: "paws_queue_depth", help: "Sessions waiting for a node.", samples: [[{}, counts.pending ?? 0]] },
          { name: "paws_nodes", help: "Nodes registered with this replica.", samples: [[{}, nodes.length]] },
          {
            name: "paws_dispatch_inflight",
            help: "Sessions this replica is streaming from nodes.",
            samples: [[{}, inflight]],
          },
        ])
      }))
  }),
)

export const HealthHttp = HttpApiBuilder.group(
  Api,
  "health",
  Effect.fn(function* (handlers) {
    const sql = yield* SqlClient.SqlClient
    // Ready = the database answers and holds this build's newest migration (a replica of an older
    // build stays ready beside a newer schema; one newer than the database is not ready).
    const newest = Math.max(...(yield* Effect.orDie(migrations)).map(([id]) => id))
    return handlers
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
      .handle(
        "readyz",
        () =>
          sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM paws_migrations WHERE migration_id = ${newest}`
            .pipe(
              Effect.timeout(2000),
              Effect.catchCause(() => Effect.fail(new ServiceUnavailable({ message: "database not reachable" }))),
              Effect.flatMap((rows) =>
                rows[0]?.n === 1
                  ? Effect.succeed({ status: "ok" as const })
                  : Effect.fail(new ServiceUnavailable({ message: `database lacks migration ${newest}` }))
              ),
            ),
      )
  }),
)
