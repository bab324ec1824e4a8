import type { AuditVerification } from "@paws/core"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import { iso, json } from "../Rows.ts"
import { chainHash, type Checkpoint, genesisHash } from "./AuditChain.ts"

const pageSize = 1000

type Broken = NonNullable<AuditVerification["firstBroken"]>

/**
 * Re-checks the audit chain: every checkpoint's signature, then every row from the latest
 * prune checkpoint (or the first row) in id order. A row is broken when its id does not follow
 * the one before (rows deleted), its hash is not sha256(previous hash, its content) (edited), or
 * it differs from a signed anchor of that row (the chain was recomputed after an edit); an anchor
 * past the last row means rows were cut off the end. Pages through the table, so memory stays
 * flat however long the log is.
 */
export const verifyChain = (
  sql: SqlClient.SqlClient,
  sign: (c: Checkpoint) => string,
): Effect.Effect<AuditVerification> => {
  const once = Effect.gen(function* () {
    const checkpoints = (yield* sql<{ id: string; pruned: boolean; hash: string; at: unknown; signature: string }>`
      SELECT through_id::text AS id, pruned, hash, at, signature FROM audit_checkpoints
      ORDER BY through_id, pruned DESC`).map((r) => ({
      throughId: Number(r.id),
      pruned: r.pruned === true || String(r.pruned) === "t",
      hash: r.hash,
      at: iso(r.at)!,
      signature: r.signature,
    }))
    const start = checkpoints.filter((c) => c.pruned).at(-1)
    const from = start === undefined ? null : { throughId: start.throughId, hash: start.hash, at: start.at }
    const signed = checkpoints.filter((c) => !c.pruned).at(-1)?.throughId ?? null
    const result = (checked: number, head: AuditVerification["head"], firstBroken: Broken | null) => ({
      ok: firstBroken === null,
      checked,
      from,
      head,
      signedThrough: signed,
      firstBroken,
    })
    for (const c of checkpoints) {
      if (sign(c) !== c.signature) {
        return result(0, null, {
          id: c.throughId,
          kind: "checkpoint" as const,
          reason: `the signature of the checkpoint of row ${c.throughId} does not match: it was forged or edited`,
        })
      }
    }
    const anchors = new Map(
      checkpoints.filter((c) => !c.pruned && c.throughId > (start?.throughId ?? 0)).map((c) => [c.throughId, c]),
    )
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
          project: String(r["project"]),
        })
        if (expected !== stored) {
          return row("its hash does not match its content and the hash of the row before it: it was edited")
        }
        const anchor = anchors.get(id)
        if (anchor !== undefined && anchor.hash !== stored) {
          return row(
            `its hash differs from the one signed for it at ${anchor.at}: the chain was rewritten up to here`,
          )
        }
        checked += 1
        previous = stored
        expectedId = id + 1
        head = { id, hash: stored }
      }
      if (rows.length < pageSize) {
        const last = [...anchors.keys()].reduce((a, b) => Math.max(a, b), 0)
        if (last >= expectedId) {
          return result(checked, head, {
            id: expectedId,
            kind: "row",
            reason: `rows ${expectedId}..${last} were signed in a checkpoint but are gone: the log was truncated`,
          })
        }
        return result(checked, head, null)
      }
      after = Number(rows.at(-1)!["id"])
    }
  })
  // A prune between reading the checkpoints and the rows looks like deleted rows: check again
  // when the latest checkpoint moved meanwhile.
  const latest = sql<
    { id: string }
  >`SELECT coalesce(max(through_id), 0)::text AS id FROM audit_checkpoints WHERE pruned`.pipe(
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
