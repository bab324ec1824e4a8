import {
  Session,
  SessionEvent,
  SessionId,
  SessionSpecView,
  type SessionStatus,
  sessionStatuses,
  sessionTransitions,
  type SessionTrigger,
} from "@paws/core"
import { Schema } from "effect"
import { SessionMemory } from "./MemoryStore.ts"
import { iso, json, rowDecoder } from "./Rows.ts"

/** The sessions table's rows and the shapes SessionStore reads and writes them as. */

/** A sessions row as the driver returns it; decoded into a Session by `toSession`. */
export interface SessionRow {
  readonly id: string
  readonly status: string
  readonly spec: unknown
  readonly credentials: string | null
  readonly node: string | null
  readonly created_at: unknown
  readonly started_at: unknown
  readonly completed_at: unknown
  readonly reason: string | null
  readonly result: unknown
  readonly daemon?: string | null
  readonly trigger?: unknown
  readonly project: string
  readonly approval_expires_at: unknown
}

export const decodeSession = rowDecoder(Session, "session")
export const decodeClaimed = rowDecoder(Schema.Struct({ id: SessionId, spec: SessionSpecView }), "session")
export const decodeEvent = rowDecoder(SessionEvent, "session event")
export const decodeMemory = rowDecoder(SessionMemory, "session memory")

export const toSession = (row: SessionRow): Session => {
  const startedAt = iso(row.started_at)
  const completedAt = iso(row.completed_at)
  const expires = row.status === "awaiting_approval" ? iso(row.approval_expires_at) : null
  return decodeSession({
    id: row.id,
    project: row.project,
    status: row.status,
    spec: json(row.spec),
    node: row.node,
    createdAt: iso(row.created_at),
    startedAt,
    completedAt,
    durationMs: startedAt !== null && completedAt !== null ? Date.parse(completedAt) - Date.parse(startedAt) : null,
    reason: row.reason,
    result: row.result === null ? null : json(row.result),
    ...(row.daemon == null ? {} : { daemon: row.daemon }),
    ...(row.trigger == null ? {} : { trigger: json(row.trigger) }),
    ...(expires === null ? {} : { approvalExpiresAt: expires }),
  })
}

export interface NewSession {
  readonly id: SessionId
  readonly spec: SessionSpecView
  readonly credentials: string | null
  readonly keyId: string
  readonly idempotencyKey: string | undefined
  readonly requestHash: string | undefined
  readonly project: string
  /** `awaiting_approval` keeps the session out of the queue until approved. */
  readonly status: "pending" | "awaiting_approval"
  readonly approvalExpiresAt: string | null
  /** Set only by control itself (daemon invocations): see MemoryStore. */
  readonly memory?: SessionMemory
  /** Set when a daemon's trigger created the session (DaemonInvoker). */
  readonly origin?: SessionOrigin | undefined
}

/** Which daemon and trigger created a session, and its trigger payload (vault-sealed) for /input. */
export interface SessionOrigin {
  readonly daemon: string
  readonly trigger: SessionTrigger
  readonly input: string | null
}

/** A queued session as placement sees it. */
export interface QueuedSession {
  readonly id: SessionId
  readonly snapshot: string
  readonly nodeSelector?: Readonly<Record<string, string>>
}

/** What the dispatcher needs to run a claimed session. */
export interface ClaimedSession {
  readonly id: SessionId
  readonly spec: SessionSpecView
  readonly credentials: string | null
  readonly memory: SessionMemory | null
  /** The vault-sealed trigger payload (daemon invocations only). */
  readonly input: string | null
}

/** A page of sessions, newest first (`cursor`: the last id of the page before), optionally filtered. */
export interface SessionListQuery {
  readonly status: SessionStatus | undefined
  readonly limit: number
  readonly cursor: SessionId | undefined
  readonly daemon?: string
  readonly node?: string
  readonly project?: string
}

/** The columns a claim (or a takeover) returns. */
export interface ClaimedRow {
  readonly id: string
  readonly spec: unknown
  readonly credentials: string | null
  readonly memory: unknown
  readonly input: string | null
}

export const toClaimed = (row: ClaimedRow): ClaimedSession => ({
  ...decodeClaimed({ id: row.id, spec: json(row.spec) }),
  credentials: row.credentials,
  memory: row.memory === null ? null : decodeMemory(json(row.memory)),
  input: row.input,
})

export interface StoredEvent {
  readonly id: string
  readonly event: SessionEvent
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000 or lone surrogates. Specs are checked at the
 * API; what nodes report (output, results, reasons) is stored with U+FFFD in their place.
 */
export const withoutNul = (s: string): string =>
  (s.includes("\u0000") ? s.replaceAll("\u0000", "\uFFFD") : s).toWellFormed()
export const nodeJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === "string" ? withoutNul(v) : v))

export const statusEvent = (status: SessionStatus, reason?: string): SessionEvent =>
  reason === undefined
    ? { _tag: "status", status, at: new Date().toISOString() }
    : { _tag: "status", status, at: new Date().toISOString(), reason }

/** Statuses from which `to` may be reached, from the one transition table in core. */
export const fromStatuses = (to: SessionStatus): Array<SessionStatus> =>
  sessionStatuses.filter((s) => sessionTransitions[s].includes(to))
