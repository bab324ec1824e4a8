import { Context, Data, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { LlmExchange, type MemoryDispatch, type SessionId } from "@paws/core"
import { readSettings } from "@paws/core/Settings"
import { memorySettings } from "./MemorySettings.ts"
import { iso } from "./Rows.ts"
import { Vault, type VaultError } from "./Vault.ts"

/**
 * What control gives a session besides its spec, never through the public body: a memory key
 * (daemons use `daemon:<name>`) under which `/state` and LLM history carry over between sessions.
 */
export interface SessionMemory {
  readonly key: string
  /** Saved /state generations to keep (default PAWS_STATE_GENERATIONS). */
  readonly keepGenerations?: number
  readonly recordLlmHistory?: boolean
}
export const SessionMemory = Schema.Struct({
  key: Schema.String,
  keepGenerations: Schema.optionalKey(Schema.Int),
  recordLlmHistory: Schema.optionalKey(Schema.Boolean),
})

/** A sealed state or history row did not open (another vault key, or moved between keys): the session cannot start. */
export class MemoryUnreadable extends Data.TaggedError("MemoryUnreadable")<{ readonly message: string }> {}

export interface HistoryEntry extends LlmExchange {
  readonly sessionId: string
  readonly recordedAt: string
}

const decodeExchange = Schema.decodeUnknownSync(Schema.fromJsonString(LlmExchange))

/**
 * `/state` generations and LLM history per memory key, sealed with the vault key (AES-256-GCM,
 * the associated data naming key and generation, so a blob moved to another key fails to open).
 * A state is stored whole or not at all: one transaction inserts the next generation and drops
 * those beyond the kept count, under a per-key advisory lock so two sessions cannot race it.
 */
export class MemoryStore extends Context.Service<MemoryStore, {
  /** The memory part of a dispatch: the newest state and as much recent history as fits the input cap. */
  readonly dispatchFor: (memory: SessionMemory) => Effect.Effect<MemoryDispatch, MemoryUnreadable>
  readonly saveState: (memory: SessionMemory, sessionId: SessionId, tar: string) => Effect.Effect<void>
  readonly recordExchange: (memory: SessionMemory, sessionId: SessionId, exchange: LlmExchange) => Effect.Effect<void>
  /** Oldest first, within retention; the newest `limit`. */
  readonly history: (key: string, limit: number) => Effect.Effect<ReadonlyArray<HistoryEntry>, VaultError>
  /** Saved generations, newest first (numbers and sizes only). */
  readonly generations: (key: string) => Effect.Effect<ReadonlyArray<{ generation: number; bytes: number }>>
}>()("paws/control/MemoryStore") {
  static readonly layer = Layer.effect(
    MemoryStore,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const vault = yield* Vault
      const s = yield* readSettings(memorySettings)
      const stateContext = (key: string, generation: number) => `memory-state:${generation}:${key}`
      const historyContext = (key: string) => `memory-history:${key}`
      const retention = `${s.llmRetentionDays} days`
      /** base64 of at most stateMaxBytes: anything longer did not come from a node that kept the cap. */
      const maxTarChars = Math.ceil(s.stateMaxBytes / 3) * 4

      const rows = (key: string, limit: number) =>
        sql<{ session_id: string; sealed: string; created_at: unknown }>`SELECT session_id, sealed, created_at
          FROM memory_history WHERE key = ${key} AND created_at > now() - ${retention}::interval
          ORDER BY id DESC LIMIT ${limit}`.pipe(Effect.orDie)

      const open = (key: string, r: { session_id: string; sealed: string; created_at: unknown }) =>
        Effect.map(vault.open(r.sealed, historyContext(key)), (text) => ({ text, r }))

      const dispatchFor = Effect.fn("MemoryStore.dispatchFor")(function* (memory: SessionMemory) {
        const latest = yield* sql<{ generation: number; sealed: string }>`SELECT generation, sealed
          FROM memory_states WHERE key = ${memory.key} ORDER BY generation DESC LIMIT 1`.pipe(Effect.orDie)
        const state = latest[0] === undefined
          ? undefined
          : yield* vault.open(latest[0].sealed, stateContext(memory.key, Number(latest[0].generation)))
        // Newest first until the input cap, then oldest first in the file.
        const lines: Array<string> = []
        let bytes = 0
        for (const row of yield* rows(memory.key, s.llmMaxEntries)) {
          const { text, r } = yield* open(memory.key, row)
          const line = JSON.stringify({ sessionId: r.session_id, recordedAt: iso(r.created_at), ...JSON.parse(text) })
          bytes += Buffer.byteLength(line) + 1
          if (bytes > s.llmInputMaxBytes) break
          lines.push(line)
        }
        const history = lines.reverse().map((l) => l + "\n").join("")
        return {
          stateMaxBytes: s.stateMaxBytes,
          recordLlmHistory: memory.recordLlmHistory === true,
          llmMaxBytes: s.llmBodyMaxBytes,
          ...(state === undefined ? {} : { state }),
          ...(history === "" ? {} : { history }),
        } satisfies MemoryDispatch
      }, Effect.mapError((e) => new MemoryUnreadable({ message: e.message })))

      const saveState = Effect.fn("MemoryStore.saveState")(
        function* (memory: SessionMemory, sessionId: SessionId, tar: string) {
          if (tar.length > maxTarChars) {
            return yield* Effect.logWarning("a node sent /state over the cap; not saved").pipe(
              Effect.annotateLogs({ session: sessionId, chars: tar.length }),
            )
          }
          const keep = Math.max(1, memory.keepGenerations ?? s.stateGenerations)
          const bytes = Math.floor((tar.length * 3) / 4)
          yield* sql.withTransaction(Effect.gen(function* () {
            yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`paws-memory:${memory.key}`}))`
            const top = yield* sql<{ n: number | null }>`SELECT max(generation) AS n FROM memory_states
              WHERE key = ${memory.key}`
            const generation = Number(top[0]?.n ?? 0) + 1
            const sealed = vault.seal(tar, stateContext(memory.key, generation))
            yield* sql`INSERT INTO memory_states (key, generation, session_id, sealed, bytes)
              VALUES (${memory.key}, ${generation}, ${sessionId}, ${sealed}, ${bytes})`
            yield* sql`DELETE FROM memory_states WHERE key = ${memory.key} AND generation <= ${generation - keep}`
          })).pipe(Effect.orDie)
        },
      )

      const recordExchange = Effect.fn("MemoryStore.recordExchange")(
        function* (memory: SessionMemory, sessionId: SessionId, exchange: LlmExchange) {
          if (memory.recordLlmHistory !== true) return
          const text = JSON.stringify(exchange)
          const sealed = vault.seal(text, historyContext(memory.key))
          yield* sql.withTransaction(Effect.gen(function* () {
            yield* sql`INSERT INTO memory_history (key, session_id, sealed, bytes)
              VALUES (${memory.key}, ${sessionId}, ${sealed}, ${Buffer.byteLength(text)})`
            yield* sql`DELETE FROM memory_history WHERE key = ${memory.key} AND (
              created_at <= now() - ${retention}::interval OR id <= (
                SELECT id FROM memory_history WHERE key = ${memory.key} ORDER BY id DESC OFFSET ${s.llmMaxEntries} LIMIT 1))`
          })).pipe(Effect.orDie)
        },
      )

      const history = Effect.fn("MemoryStore.history")(function* (key: string, limit: number) {
        const out: Array<HistoryEntry> = []
        for (const row of yield* rows(key, limit)) {
          const { text, r } = yield* open(key, row)
          out.push({ sessionId: r.session_id, recordedAt: iso(r.created_at) ?? "", ...decodeExchange(text) })
        }
        return out.reverse()
      })

      const generations = (key: string) =>
        sql<{ generation: number; bytes: number }>`SELECT generation, bytes FROM memory_states
          WHERE key = ${key} ORDER BY generation DESC`.pipe(
          Effect.map((rs) => rs.map((r) => ({ generation: Number(r.generation), bytes: Number(r.bytes) }))),
          Effect.orDie,
        )

      return MemoryStore.of({ dispatchFor, saveState, recordExchange, history, generations })
    }),
  )
}
