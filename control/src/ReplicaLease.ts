import { Context, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { ControlConfig } from "./ControlConfig.ts"

/**
 * This control replica's lease in PostgreSQL. Sessions it claims carry its id; while the lease is
 * renewed (every third of PAWS_REPLICA_LEASE_MS) no other replica touches them. A replica that stops
 * cleanly gives its lease up, so another (or its restart) recovers its sessions at once; one that
 * dies is noticed when the lease lapses.
 */
export class ReplicaLease extends Context.Service<ReplicaLease, {
  readonly id: string
  readonly leaseMs: number
}>()("paws/control/ReplicaLease") {
  static readonly layer = Layer.effect(
    ReplicaLease,
    Effect.gen(function* () {
      const { replicaId: id, replicaLeaseMs: leaseMs } = yield* ControlConfig
      const sql = yield* SqlClient.SqlClient
      const renew = sql`INSERT INTO control_replicas (id) VALUES (${id})
        ON CONFLICT (id) DO UPDATE SET seen_at = now()`.pipe(Effect.orDie)
      yield* renew
      yield* renew.pipe(
        Effect.catchCause((cause) => Effect.logWarning("replica lease renewal failed", cause)),
        Effect.repeat(Schedule.spaced(Math.max(100, Math.floor(leaseMs / 3)))),
        Effect.forkScoped,
      )
      yield* Effect.addFinalizer(() =>
        sql`DELETE FROM control_replicas WHERE id = ${id}`.pipe(Effect.timeout(2_000), Effect.ignoreCause)
      )
      yield* Effect.logInfo("control replica").pipe(Effect.annotateLogs({ replica: id }))
      return ReplicaLease.of({ id, leaseMs })
    }),
  )
}
