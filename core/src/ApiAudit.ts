import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { SessionId } from "./Ids.ts"
import { ProjectId, ProjectNotFound } from "./Project.ts"

/** One audit log row. `hash` chains it to the row before: sha256(previous hash + canonical content). */
export const AuditEntry = Schema.Struct({
  /** Monotonic: one more than the row before it in the chain. */
  id: Schema.Int,
  time: Schema.String,
  /** `key:<API key id>`, `node:<node id>` or `system`. */
  actor: Schema.String,
  /** What happened, e.g. `api.sessions.create`, `session.status`, `egress`, `apikey.revoked`. */
  action: Schema.String,
  /** What it happened to: a session id, key id, host, request path. */
  target: Schema.String,
  /** `ok`, an error tag, a session status, or the proxy's decision (`allowed`, `denied_host`, …). */
  result: Schema.String,
  session: Schema.NullOr(Schema.String),
  daemon: Schema.NullOr(Schema.String),
  /** Names and numbers, never secret values (header names, not header values). */
  detail: Schema.Record(Schema.String, Schema.Unknown),
  hash: Schema.String,
  /** The project the row belongs to: the acting key's, else the session's or daemon's, else `default`. */
  project: Schema.String,
}).annotate({ identifier: "AuditEntry" })
export type AuditEntry = typeof AuditEntry.Type

export const AuditPage = Schema.Struct({
  entries: Schema.Array(AuditEntry),
  /** Pass as `cursor` for the rows after these (oldest first); at the end it yields new rows once written. */
  nextCursor: Schema.String,
  /** Whether more rows matched than this page holds. */
  more: Schema.Boolean,
}).annotate({ identifier: "AuditPage" })
export type AuditPage = typeof AuditPage.Type

export const AuditCheckpoint = Schema.Struct({
  /** Rows up to and including this id were pruned. */
  throughId: Schema.Int,
  /** The chain hash of row `throughId`: the first remaining row chains onto it. */
  hash: Schema.String,
  at: Schema.String,
}).annotate({ identifier: "AuditCheckpoint" })

export const AuditVerification = Schema.Struct({
  ok: Schema.Boolean,
  /** Rows re-hashed. */
  checked: Schema.Int,
  /** The signed checkpoint the chain was checked from (rows before it were pruned); null: from the first row. */
  from: Schema.NullOr(AuditCheckpoint),
  head: Schema.NullOr(Schema.Struct({ id: Schema.Int, hash: Schema.String })),
  /**
   * The newest row whose hash control has signed (every PAWS_AUDIT_CHECKPOINT_INTERVAL_MS): a chain
   * recomputed after an edit, or cut short, fails verify up to here. Null: none yet.
   */
  signedThrough: Schema.NullOr(Schema.Int),
  /** The first row (or checkpoint) that does not fit the chain, and why; null when ok. */
  firstBroken: Schema.NullOr(Schema.Struct({
    id: Schema.Int,
    kind: Schema.Literals(["row", "checkpoint"]),
    reason: Schema.String,
  })),
}).annotate({ identifier: "AuditVerification" })
export type AuditVerification = typeof AuditVerification.Type

/** Opaque to clients; inside, base64url of `a:<last id seen>` (btoa, not Buffer: core also runs in browsers). */
export const encodeAuditCursor = (afterId: number): string =>
  btoa(`a:${afterId}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")
export const decodeAuditCursor = (cursor: string): number | undefined => {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(cursor)) return undefined
  let text: string
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))
  } catch {
    return undefined
  }
  const m = /^a:(0|[1-9][0-9]{0,14})$/.exec(text)
  return m === null ? undefined : Number(m[1])
}

const AuditCursor = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((s: string) =>
      decodeAuditCursor(s) !== undefined || "must be a nextCursor returned by GET /v1/audit"
    ),
  ),
)

const isoTime = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/
const AuditTime = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((s: string) =>
      (isoTime.test(s) && !Number.isNaN(Date.parse(s))) || "must be an ISO 8601 time, e.g. 2026-12-07T01:00:00Z"
    ),
  ),
)

const Text = Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 256)))

export const maxAuditPageSize = 1000
const AuditLimit = Schema.NumberFromString.pipe(
  Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxAuditPageSize })),
)

export const AuditQuery = {
  /** The instance admin: only this project's rows (default: all). A project's key sees only its own. */
  project: Schema.optional(ProjectId),
  actor: Schema.optional(Text),
  daemon: Schema.optional(Text),
  session: Schema.optional(SessionId),
  /** Exact, or a prefix ending in `*` (`api.*`). */
  action: Schema.optional(Text),
  since: Schema.optional(AuditTime),
  until: Schema.optional(AuditTime),
  cursor: Schema.optional(AuditCursor),
  limit: Schema.optional(AuditLimit),
}

/** The tamper-evident audit log (admin only: it names every key, session and host). */
export class AuditApi extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("list", "/", { query: AuditQuery, success: AuditPage, error: ProjectNotFound }).pipe(scoped(
      "admin",
      "Read the audit log",
      "Audit rows oldest first: a project's admin key sees its project's rows, the instance admin every project's " +
        "(or one, with `project`; another project named by a project's key is a 404). " +
        "Filtered by actor, daemon, session, action (exact, or a prefix ending in `*`) and " +
        "time (`since` inclusive, `until` exclusive, ISO 8601). Page with `cursor` = the previous `nextCursor`; " +
        "polling with the last `nextCursor` follows new rows. Every mutating API call, session status change, " +
        "key and node-token change and proxy egress decision (host, method, path, decision; never values) is here.",
    )),
    HttpApiEndpoint.get("verify", "/verify", { success: AuditVerification }).pipe(scoped(
      "admin",
      "Verify the audit chain",
      "Re-hashes every row from the first (or from the latest signed checkpoint left by retention pruning) and " +
        "names the first row that does not fit: edited, inserted or deleted rows, or a forged checkpoint. " +
        "Every project's rows are one chain, so a project's key gets the verdict on the whole chain; when the " +
        "first broken row is another project's, only its id is named, not its content.",
    )),
  )
  .prefix("/v1/audit")
  .annotateMerge(OpenApi.annotations({ description: "Audit log: an append-only, hash-chained record." })) {}
