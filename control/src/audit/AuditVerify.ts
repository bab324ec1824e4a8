import type { AuditVerification } from "@paws/core"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import { iso, json } from "../Rows.ts"
import { chainHash, genesisHash } from "./AuditChain.ts"

const pageSize = 1000

interface Checkpoint {
  readonly throughId: number
  readonly hash: string
  readonly at: string
}

type Broken = NonNullable<AuditVerification["firstBroken"]>

/**
 * Re-checks the audit chain: every checkpoint's signature, then every row from the latest
 * checkpoint (or the first row) in id order. A row is broken when its id does not follow the
 * one before (rows deleted) or its hash is not sha256(previous hash, its content) (edited).
 * Pages through the table, so memory stays flat however long the log is.
 */
export const verifyChain = (
  sql: SqlClient.SqlClient,
  sign: (c: Checkpoint) => string,
): Effect.Effect<AuditVerification> => {
  const once = Effect.gen(function* () {
    const checkpoints = (yield* sql<{ id: string; hash: string; at: unknown; signature: string }>`SELECT
        through_id::text AS id, hash, at, signature FROM audit_checkpoints ORDER BY through_id`).map((r) => ({
      throughId: Number(r.id),
      hash: r.hash,
      at: iso(r.at)!,
      signature: r.signature,
    }))
    const start = checkpoints.at(-1)
    const from = start === undefined ? null : { throughId: start.throughId, hash: start.hash, at: start.at }
    const result = (checked: number, head: AuditVerification["head"], firstBroken: Broken | null) => ({
      ok: firstBroken === null,
      checked,
      from,
      head,
      firstBroken,
    })
    for (const c of checkpoints) {
      if (sign(c) !== c.signature) {
        return result(0, null, {
          id: c.throughId,
          kind: "checkpoint" as const,
          reason: `the signature of the checkpoint through row ${c.throughId} does not match: it was forged or edited`,
        })
      }
    }
    let expectedId = (start?.throughId ?? 0) + 1
    let previous = start?.hash ?? genesisHash
    let checked = 0
    let head: AuditVerification["head"] = start === undefined ? null : { id: start.throughId, hash: start.hash }
    let after = -1
    while (true) {
      const rows = yield* sql<Record<string, unknown>>`SELECT * FROM audit WHERE id > ${after}
        ORDER BY id LIMIT ${pageSize}`
      for (const r of rows) {
        const id = Number(r["id"])
        const row = (reason: string) => result(checked, head, { id, kind: "row" as const, reason })
        if (id !== expectedId) {
          return row(
            id < expectedId
              ? `row ${id} is older than the chain's start (row ${expectedId}): a pruned row was put back`
              : `the chain expects row ${expectedId} here: rows ${expectedId}..${id - 1} were deleted`,
          )
        }
        const stored = String(r["hash"])
        const expected = chainHash(previous, {
          id,
          time: iso(r["time"])!,
          actor: String(r["actor"]),
          action: String(r["action"]),
          target: String(r["target"]),
          result: String(r["result"]),
          session: r["session"] === null ? null : String(r["session"]),
          daemon: r["daemon"] === null ? null : String(r["daemon"]),
          detail: json(r["detail"]) as Record<string, unknown>,
        })
        if (expected !== stored) {
          return row("its hash does not match its content and the hash of the row before it: it was edited")
        }
        checked += 1
        previous = stored
        expectedId = id + 1
        head = { id, hash: stored }
      }
      if (rows.length < pageSize) return result(checked, head, null)
      after = Number(rows.at(-1)!["id"])
    }
  })
  // A prune between reading the checkpoints and the rows looks like deleted rows: check again
  // when the latest checkpoint moved meanwhile.
  const latest = sql<{ id: string }>`SELECT coalesce(max(through_id), 0)::text AS id FROM audit_checkpoints`.pipe(
    Effect.map((r) => r[0]?.id ?? "0"),
  )
  return Effect.gen(function* () {
    for (let attempt = 0;; attempt++) {
      const before = yield* latest
      const outcome = yield* once
      if (outcome.ok || attempt === 2 || (yield* latest) === before) return outcome
    }
  }).pipe(Effect.orDie, Effect.withSpan("AuditLog.verify"))
}
