import { Effect } from "effect"
import type { SqlClient } from "effect/sql"

/**
 * Where a pending session stands in the queue: 1 + the sessions queued before it. The queue is the
 * `pending` rows in id order (ids are UUIDv7: creation order), which is the order the dispatcher
 * takes them in; a session that only some nodes can take (snapshot, nodeSelector) may be passed by
 * later ones, so this is its place in line, not a promise of when it starts.
 */
export const queuePosition = (sql: SqlClient.SqlClient, id: string): Effect.Effect<number> =>
  sql<{ n: number | string }>`SELECT count(*) AS n FROM sessions WHERE status = 'pending' AND id < ${id}`.pipe(
    Effect.orDie,
    Effect.map((rows) => Number(rows[0]?.n ?? 0) + 1),
  )
