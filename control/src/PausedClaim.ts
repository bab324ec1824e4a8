import type { SessionId } from "@paws/core"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { json } from "./Rows.ts"
import { decodeClaimed, decodeMemory } from "./SessionRows.ts"
import type { ClaimedSession } from "./SessionRows.ts"

/**
 * A paused session taken by this replica for a resume: what a dispatch needs (spec, sealed
 * credentials, memory, input), read now so a credential rotated while paused is the one sent.
 * Undefined when it is not paused (any more).
 */
export const claimPaused = (id: SessionId, replica: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<
      { id: string; spec: unknown; credentials: string | null; memory: unknown; input: string | null }
    >`UPDATE sessions SET replica = ${replica} WHERE id = ${id} AND status = 'paused'
      RETURNING id, spec, credentials, memory, input`.pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) return undefined
    const claimed: ClaimedSession = {
      ...decodeClaimed({ id: row.id, spec: json(row.spec) }),
      credentials: row.credentials,
      memory: row.memory === null ? null : decodeMemory(json(row.memory)),
      input: row.input,
    }
    return claimed
  })

/**
 * Replaces a paused session's sealed credentials with `next(current)` (both plaintext JSON),
 * unless it left `paused` or they changed meanwhile. False when nothing was replaced.
 */
export const replacePausedCredentials = (
  id: SessionId,
  next: (current: string | null) => Effect.Effect<string>,
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ credentials: string | null }>`SELECT credentials FROM sessions
      WHERE id = ${id} AND status = 'paused'`.pipe(Effect.orDie)
    const row = rows[0]
    if (row === undefined) return false
    const sealed = yield* next(row.credentials)
    const updated = yield* sql`UPDATE sessions SET credentials = ${sealed}
      WHERE id = ${id} AND status = 'paused' AND credentials IS NOT DISTINCT FROM ${row.credentials}
      RETURNING id`.pipe(Effect.orDie)
    return updated.length > 0
  })
