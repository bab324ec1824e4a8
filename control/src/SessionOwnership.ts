import type { SessionId } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { type ClaimedRow, type ClaimedSession, toClaimed } from "./SessionRows.ts"

/** A starting or running session whose dispatching replica is gone (`replica` null: handed to nobody). */
export interface Orphan {
  readonly id: SessionId
  readonly status: "starting" | "running"
  readonly node: string | null
  readonly replica: string | null
}

/**
 * Which control replica follows each live session (the `replica` column): the sessions of replicas
 * that are gone, their takeover, and whether a replica still holds one. Every change is one
 * conditional UPDATE, so two replicas never both take a session over.
 */
export class SessionOwnership extends Context.Service<SessionOwnership, {
  /**
   * Sessions whose dispatching replica is gone — this replica's own from before a restart (`own`), or
   * any replica without a live lease. Their node keeps them running for a while (PAWS_NODE_ADOPT_GRACE_MS):
   * a replica linked to that node takes them over (`adopt`); else they are re-queued or failed.
   */
  readonly orphans: (
    own: { readonly id: string; readonly restarted: boolean },
    leaseMs: number,
  ) => Effect.Effect<ReadonlyArray<Orphan>>
  /** Makes an orphan this replica's own; undefined if it moved meanwhile (another replica took it, or it ended). */
  readonly adopt: (orphan: Orphan, replica: string) => Effect.Effect<ClaimedSession | undefined>
  /** Whether this replica still follows the session (another may have taken it over while this one lapsed). */
  readonly heldBy: (id: SessionId, replica: string) => Effect.Effect<boolean>
}>()("paws/control/SessionOwnership") {
  static readonly layer = Layer.effect(
    SessionOwnership,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const orphans = Effect.fnUntraced(function* (
        own: { readonly id: string; readonly restarted: boolean },
        leaseMs: number,
      ) {
        // This replica's own sessions are orphans only at its start (they are from before a restart):
        // handed to nobody (replica NULL), so later sweeps still see them while they wait for their node.
        if (own.restarted) {
          yield* sql`UPDATE sessions SET replica = NULL
            WHERE replica = ${own.id} AND status IN ('starting', 'running')`.pipe(Effect.orDie)
        }
        const rows = yield* sql<{ id: string; status: string; node: string | null; replica: string | null }>`
          SELECT id, status, node, replica FROM sessions
          WHERE status IN ('starting', 'running') AND (replica IS NULL OR (replica <> ${own.id} AND replica NOT IN (
            SELECT id FROM control_replicas WHERE seen_at > now() - make_interval(secs => ${leaseMs / 1000})
          )))`.pipe(Effect.orDie)
        return rows.map((r): Orphan => ({
          id: r.id as SessionId,
          status: r.status === "starting" ? "starting" : "running",
          node: r.node,
          replica: r.replica,
        }))
      })

      const adopt = Effect.fnUntraced(function* (orphan: Orphan, replica: string) {
        const rows = yield* sql<ClaimedRow>`
          UPDATE sessions SET replica = ${replica}
          WHERE id = ${orphan.id} AND status IN ('starting', 'running')
            AND replica IS NOT DISTINCT FROM ${orphan.replica} AND node IS NOT DISTINCT FROM ${orphan.node}
          RETURNING id, spec, credentials, memory, input`.pipe(Effect.orDie)
        return rows[0] === undefined ? undefined : toClaimed(rows[0])
      })

      const heldBy = (id: SessionId, replica: string) =>
        sql<{ id: string }>`SELECT id FROM sessions WHERE id = ${id} AND replica = ${replica}`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.orDie,
        )

      return SessionOwnership.of({ orphans, adopt, heldBy })
    }),
  )
}
