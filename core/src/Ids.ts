import { Schema } from "effect"

const uuidV7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** A session id: a UUIDv7, so ids sort by creation time (cursor pagination relies on it). */
export const SessionId = Schema.String.pipe(
  Schema.check(Schema.isPattern(uuidV7Pattern, { message: "must be a UUIDv7 session id" })),
  Schema.brand("SessionId"),
).annotate({ identifier: "SessionId", description: "UUIDv7, sortable by creation time" })
export type SessionId = typeof SessionId.Type

export const NodeId = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z0-9][a-z0-9._-]{0,62}$/, { message: "must be 1-63 chars of a-z 0-9 . _ -" })),
  Schema.brand("NodeId"),
).annotate({ identifier: "NodeId" })
export type NodeId = typeof NodeId.Type

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

/**
 * RFC 9562 UUIDv7: 48-bit unix ms timestamp, then random bits. Within one millisecond
 * the ids are not ordered; callers that need strict order use the monotonic generator.
 */
export const uuidV7 = (nowMs: number = Date.now()): string => {
  const bytes = new Uint8Array(16)
  crypto.getRandomValues(bytes)
  let ts = nowMs
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ts % 256
    ts = Math.floor(ts / 256)
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const h = hex(bytes)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** A generator whose ids strictly increase even when many are made in one millisecond. */
export const makeMonotonicUuidV7 = (now: () => number = Date.now): () => string => {
  let last = ""
  let lastMs = 0
  return () => {
    const ms = Math.max(now(), lastMs)
    let id = uuidV7(ms)
    // Same millisecond: bump the timestamp by one ms until the id sorts after the last one.
    let bump = ms
    while (id <= last) {
      bump += 1
      id = uuidV7(bump)
    }
    lastMs = bump
    last = id
    return id
  }
}

export const newSessionId: () => SessionId = (() => {
  const next = makeMonotonicUuidV7()
  return () => next() as SessionId
})()
