import { createHash } from "node:crypto"

/** The content of one audit row that its hash covers (every column but the hash). */
export interface AuditContent {
  readonly id: number
  readonly time: string
  readonly actor: string
  readonly action: string
  readonly target: string
  readonly result: string
  readonly session: string | null
  readonly daemon: string | null
  readonly detail: Record<string, unknown>
  /** The project the row belongs to (migration 0020; rows before it are `default`). */
  readonly project: string
}

/** JSON with object keys sorted at every level: jsonb reorders keys, so the hash must not depend on order. */
const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

/**
 * The project is covered only when it is not `default`: rows written before projects (all `default`)
 * keep the hash they were written with, and moving a row into or out of any project still breaks it.
 */
export const canonicalRow = (row: AuditContent): string =>
  canonicalJson([
    row.id,
    row.time,
    row.actor,
    row.action,
    row.target,
    row.result,
    row.session,
    row.daemon,
    row.detail,
    ...(row.project === "default" ? [] : [row.project]),
  ])

/** The hash a row must carry: sha256 over the previous row's hash and this row's canonical content. */
export const chainHash = (previousHash: string, row: AuditContent): string =>
  createHash("sha256").update(previousHash).update("\n").update(canonicalRow(row)).digest("hex")

/** The chain's start when nothing was ever pruned. */
export const genesisHash = ""

/** A signed statement that row `throughId` carries `hash`; `pruned`: the rows through it were deleted. */
export interface Checkpoint {
  readonly throughId: number
  readonly pruned: boolean
  readonly hash: string
  readonly at: string
}

/** What a checkpoint's signature covers. */
export const checkpointMessage = (c: Checkpoint) =>
  `paws-audit-checkpoint\n${c.pruned ? "pruned" : "anchor"}\n${c.throughId}\n${c.hash}\n${c.at}`

const maxText = 2048

/** Stored text: PostgreSQL refuses U+0000 and lone surrogates; a guest-chosen path must not be unbounded. */
export const storableText = (s: string): string => {
  const clean = (s.includes("\u0000") ? s.replaceAll("\u0000", "\uFFFD") : s).toWellFormed()
  return clean.length > maxText ? `${clean.slice(0, maxText)}…` : clean
}

/**
 * The detail as it will read back from jsonb: storable strings, no undefined, finite numbers
 * only (JSON turns the rest into null), so the hash computed now matches the one verify recomputes.
 */
export const storableDetail = (detail: Record<string, unknown>): Record<string, unknown> =>
  JSON.parse(JSON.stringify(detail, (_k, v) => (typeof v === "string" ? storableText(v) : v))) as Record<
    string,
    unknown
  >
