import {
  type AuditEntry,
  type AuditPage,
  type AuditVerification,
  CurrentPrincipal,
  encodeAuditCursor,
} from "@paws/core"
import { Context, Effect, type Exit, Layer, Option, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { makeBatcher } from "../Batcher.ts"
import { ControlConfig } from "../ControlConfig.ts"
import { iso, json } from "../Rows.ts"
import { Vault } from "../Vault.ts"
import {
  type AuditContent,
  chainHash,
  type Checkpoint,
  checkpointMessage,
  genesisHash,
  storableDetail,
  storableText,
} from "./AuditChain.ts"
import { resolveProjects } from "./AuditProjects.ts"
import { verifyChain } from "./AuditVerify.ts"
import { PendingAudit, type PendingAuditRows } from "./PendingAudit.ts"

/** One thing that happened. Never put a secret value in any field: names, ids and numbers only. */
export interface AuditRecord {
  /** `key:<API key id>`, `node:<node id>`, `system` (later: a user's subject). See `currentActor`. */
  readonly actor: string
  readonly action: string
  readonly target: string
  readonly result: string
  readonly session?: string | undefined
  readonly daemon?: string | undefined
  readonly detail?: Record<string, unknown> | undefined
  /**
   * Whose row it is. Unset: the calling key's project inside an API request, else the session's,
   * else the daemon's, else `default` (resolved in AuditProjects when the row is written).
   */
  readonly project?: string | undefined
}

export interface AuditFilter {
  /** Only this project's rows; unset: every project's (the instance admin). */
  readonly project?: string | undefined
  readonly actor?: string | undefined
  readonly daemon?: string | undefined
  readonly session?: string | undefined
  readonly action?: string | undefined
  readonly since?: string | undefined
  readonly until?: string | undefined
  readonly afterId: number
  readonly limit: number
}

/** How the audit log names a principal: `key:<id>`, or a console user signed in by OIDC (`oidc:<sub>`). */
export const actorOf = (keyId: string): string => keyId.startsWith("oidc:") ? keyId : `key:${keyId}`

/** The caller inside an API request (`key:<id>`, `oidc:<sub>`), else `system`. */
export const currentActor: Effect.Effect<string> = Effect.map(
  Effect.serviceOption(CurrentPrincipal),
  (p) => (Option.isSome(p) ? actorOf(p.value.keyId) : "system"),
)

/** Serializes appends across every replica on one database (pg_advisory_xact_lock). */
const chainLock = 7061777

interface AuditRow {
  readonly id: unknown
  readonly time: unknown
  readonly actor: string
  readonly action: string
  readonly target: string
  readonly result: string
  readonly session: string | null
  readonly daemon: string | null
  readonly detail: unknown
  readonly hash: string
  readonly project: string
}

export const toEntry = (r: AuditRow): AuditEntry => ({
  id: Number(r.id),
  time: iso(r.time)!,
  actor: r.actor,
  action: r.action,
  target: r.target,
  result: r.result,
  session: r.session,
  daemon: r.daemon,
  detail: json(r.detail) as Record<string, unknown>,
  hash: r.hash,
  project: r.project,
})

const likePrefix = (prefix: string) => prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + "%"

/**
 * The audit log: an append-only table whose rows are hash-chained. Concurrent records are
 * group-committed (one transaction, one lock, many rows); the lock makes the chain linear
 * across replicas. Rows older than PAWS_AUDIT_RETENTION_MS are pruned behind a checkpoint
 * signed with a key derived from the vault key, so verify still starts from a trusted hash.
 */
export class AuditLog extends Context.Service<AuditLog, {
  readonly record: (r: AuditRecord) => Effect.Effect<void>
  /**
   * Runs `effect` (one API call) holding the rows recorded inside it, then appends them and the
   * row `last` makes of its exit in one batch; that append is awaited, so all are durable first.
   */
  readonly recordAround: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    last: (exit: Exit.Exit<A, E>) => AuditRecord,
  ) => Effect.Effect<A, E, R>
  readonly list: (f: AuditFilter) => Effect.Effect<AuditPage>
  readonly verify: Effect.Effect<AuditVerification>
  /** Prunes rows older than `cutoff` behind a signed checkpoint; the number of rows pruned. */
  readonly prune: (cutoff: Date) => Effect.Effect<number>
}>()("paws/control/AuditLog") {
  static readonly layer = Layer.effect(
    AuditLog,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const vault = yield* Vault
      const config = yield* ControlConfig
      const sign = (c: Checkpoint) => vault.fingerprint(checkpointMessage(c))

      const chainHead = Effect.gen(function* () {
        const last = yield* sql<{ id: string; hash: string }>`SELECT id::text AS id, hash FROM audit
          ORDER BY audit.id DESC LIMIT 1`
        if (last[0] !== undefined) return { id: Number(last[0].id), hash: last[0].hash }
        const checkpoint = yield* sql<{ id: string; hash: string }>`SELECT through_id::text AS id, hash
          FROM audit_checkpoints WHERE pruned ORDER BY through_id DESC LIMIT 1`
        return checkpoint[0] === undefined
          ? { id: 0, hash: genesisHash }
          : { id: Number(checkpoint[0].id), hash: checkpoint[0].hash }
      })

      const appendBatch = (batch: ReadonlyArray<AuditRecord>) =>
        sql.withTransaction(Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(${chainLock})`
          const head = yield* chainHead
          const projects = yield* resolveProjects(sql, batch)
          const time = new Date().toISOString()
          let hash = head.hash
          const rows = batch.map((r, i) => {
            const content: AuditContent = {
              id: head.id + i + 1,
              time,
              actor: storableText(r.actor),
              action: storableText(r.action),
              target: storableText(r.target),
              result: storableText(r.result),
              session: r.session ?? null,
              daemon: r.daemon === undefined ? null : storableText(r.daemon),
              detail: storableDetail(r.detail ?? {}),
              project: projects[i]!,
            }
            hash = chainHash(hash, content)
            return { ...content, detail: JSON.stringify(content.detail), hash }
          })
          yield* sql`INSERT INTO audit ${sql.insert(rows as unknown as readonly [Record<string, unknown>])}`
          return batch.map(() => undefined)
        })).pipe(
          // Always its own transaction, even when the first caller of a batch was inside one.
          Effect.updateContext((context: Context.Context<never>) => Context.omit(sql.transactionService)(context)),
          Effect.orDie,
        )

      const submit = yield* makeBatcher(appendBatch, { maxBatch: 256, maxInflight: 1 })
      /**
       * Awaited, so a row is durable before the API answers; but a failed append is logged, never
       * thrown: what it describes has already happened, and failing it afterwards would only lie.
       */
      const logFailure = (action: string) =>
        Effect.catchCause((cause) =>
          Effect.logError("audit append failed").pipe(Effect.annotateLogs({ action, cause }))
        )
      const submitAll = (rows: ReadonlyArray<AuditRecord>) =>
        Effect.forEach(rows, (r) => submit(r).pipe(logFailure(r.action)), { concurrency: "unbounded", discard: true })

      const record = (r: AuditRecord) =>
        Effect.gen(function* () {
          const p = yield* Effect.serviceOption(CurrentPrincipal)
          const row = r.project !== undefined || Option.isNone(p) ? r : { ...r, project: p.value.project }
          const pending = yield* PendingAudit
          // Inside an API call: written, and awaited, with the call's own row (recordAround).
          if (pending !== undefined && pending.open) return void pending.rows.push(row)
          yield* submit(row)
        }).pipe(logFailure(r.action))

      const recordAround = <A, E, R>(
        effect: Effect.Effect<A, E, R>,
        last: (exit: Exit.Exit<A, E>) => AuditRecord,
      ): Effect.Effect<A, E, R> => {
        const pending: PendingAuditRows = { open: true, rows: [] }
        return Effect.provideService(effect, PendingAudit, pending).pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              pending.open = false
              return submitAll([...pending.rows, last(exit)])
            })
          ),
        )
      }

      const list = Effect.fn("AuditLog.list")(function* (f: AuditFilter) {
        const rows = yield* sql<AuditRow>`SELECT * FROM audit WHERE id > ${f.afterId}
          AND ${f.project === undefined ? sql`TRUE` : sql`project = ${f.project}`}
          AND ${f.actor === undefined ? sql`TRUE` : sql`actor = ${f.actor}`}
          AND ${f.daemon === undefined ? sql`TRUE` : sql`daemon = ${f.daemon}`}
          AND ${f.session === undefined ? sql`TRUE` : sql`session = ${f.session}`}
          AND ${
          f.action === undefined
            ? sql`TRUE`
            : f.action.endsWith("*")
            ? sql`action LIKE ${likePrefix(f.action.slice(0, -1))}`
            : sql`action = ${f.action}`
        }
          AND ${f.since === undefined ? sql`TRUE` : sql`time >= ${f.since}::timestamptz`}
          AND ${f.until === undefined ? sql`TRUE` : sql`time < ${f.until}::timestamptz`}
          ORDER BY id LIMIT ${f.limit + 1}`.pipe(Effect.orDie)
        const entries = rows.slice(0, f.limit).map(toEntry)
        return {
          entries,
          nextCursor: encodeAuditCursor(entries.at(-1)?.id ?? f.afterId),
          more: rows.length > f.limit,
        }
      })

      const prune = Effect.fn("AuditLog.prune")(function* (cutoff: Date) {
        const pruned = yield* sql.withTransaction(Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(${chainLock})`
          const last = yield* sql<{ id: string; hash: string }>`SELECT id::text AS id, hash FROM audit
            WHERE time < ${cutoff.toISOString()}::timestamptz ORDER BY audit.id DESC LIMIT 1`
          if (last[0] === undefined) return undefined
          const checkpoint = {
            throughId: Number(last[0].id),
            pruned: true,
            hash: last[0].hash,
            at: new Date().toISOString(),
          }
          yield* sql`INSERT INTO audit_checkpoints (through_id, pruned, hash, at, signature)
            VALUES (${checkpoint.throughId}, TRUE, ${checkpoint.hash}, ${checkpoint.at}, ${sign(checkpoint)})`
          // The one DELETE the append-only trigger lets through, and only in this transaction.
          yield* sql`SELECT set_config('paws.audit_prune', 'on', true)`
          const deleted = yield* sql<{ n: number }>`WITH d AS (
              DELETE FROM audit WHERE id <= ${checkpoint.throughId} RETURNING 1
            ) SELECT count(*)::int AS n FROM d`
          // Anchors of pruned rows sign nothing that still exists; keeping them would only grow the table.
          yield* sql`DELETE FROM audit_checkpoints WHERE NOT pruned AND through_id <= ${checkpoint.throughId}`
          return { throughId: checkpoint.throughId, rows: Number(deleted[0]?.n ?? 0) }
        })).pipe(Effect.orDie)
        if (pruned === undefined) return 0
        yield* record({
          actor: "system",
          action: "audit.pruned",
          target: String(pruned.throughId),
          result: "ok",
          detail: { throughId: pruned.throughId, rows: pruned.rows, retentionMs: config.auditRetentionMs },
        })
        return pruned.rows
      })

      /**
       * Signs the chain's current head. Someone who can write the database but lacks the vault key
       * can recompute every hash after an edit, or cut rows off the end; neither survives a signed
       * head they cannot forge. Rows after the latest anchor are covered by the next one.
       */
      const anchor = Effect.gen(function* () {
        const last = yield* sql<{ id: string; hash: string }>`SELECT id::text AS id, hash FROM audit
          ORDER BY audit.id DESC LIMIT 1`
        if (last[0] === undefined) return
        const c = { throughId: Number(last[0].id), pruned: false, hash: last[0].hash, at: new Date().toISOString() }
        yield* sql`INSERT INTO audit_checkpoints (through_id, pruned, hash, at, signature)
          VALUES (${c.throughId}, FALSE, ${c.hash}, ${c.at}, ${sign(c)}) ON CONFLICT DO NOTHING`
      }).pipe(Effect.orDie)

      const maintain = Effect.suspend(() =>
        config.auditRetentionMs > 0 ? prune(new Date(Date.now() - config.auditRetentionMs)) : Effect.void
      ).pipe(
        Effect.andThen(anchor),
        Effect.catchCause((cause) =>
          Effect.logWarning("audit checkpoint or prune failed").pipe(Effect.annotateLogs({ cause }))
        ),
      )
      yield* Effect.forkScoped(Effect.repeat(maintain, Schedule.spaced(config.auditCheckpointIntervalMs)))

      return AuditLog.of({ record, recordAround, list, verify: verifyChain(sql, sign), prune })
    }),
  ).pipe(Layer.provide(Vault.layerKeyOnly))
}
