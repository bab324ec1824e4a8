import {
  ApiKey,
  ApiKeyNotFound,
  ApiScope,
  type CreatedApiKey,
  defaultProject,
  KeyLimits,
  type Principal,
  Unauthorized,
} from "@paws/core"
import { Clock, Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { AuditLog } from "./audit/AuditLog.ts"
import { recordCredential } from "./audit/CredentialAudit.ts"
import { newBearer, parseBearer, secretMatches } from "./BearerSecrets.ts"
import { chmodSync, mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { ControlConfig } from "./ControlConfig.ts"
import { iso, json, rowDecoder } from "./Rows.ts"

/** Keys look like `paws_<12-char id>_<43-char secret>`; the id finds the row, the secret is checked by hash. */
const cacheTtlMs = 5_000

interface KeyRow {
  readonly id: string
  readonly name: string
  readonly scopes: string
  readonly secret_hash: string
  readonly created_at: unknown
  readonly last_used_at: unknown
  readonly revoked_at: unknown
  readonly project: string
  readonly limits: unknown
}

const decodeApiKey = rowDecoder(ApiKey, "API key")
const decodeScopes = rowDecoder(Schema.Array(ApiScope), "API key's scopes")
const decodeLimits = rowDecoder(KeyLimits, "API key's limits")

const toApiKey = (row: KeyRow): ApiKey =>
  decodeApiKey({
    id: row.id,
    name: row.name,
    scopes: row.scopes.split(","),
    project: row.project,
    limits: json(row.limits),
    createdAt: iso(row.created_at),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
  })

/**
 * API keys: high-entropy secrets shown once and stored as SHA-256 hashes (a slow hash adds
 * nothing for 256-bit random secrets and would cost every request). Verified keys are cached
 * for a few seconds so the hot path makes no database round trip; a revoke on this replica
 * takes effect at once, on others within the cache TTL.
 */
export class ApiKeys extends Context.Service<ApiKeys, {
  readonly authenticate: (token: string) => Effect.Effect<Principal, Unauthorized>
  /**
   * Fails when key `keyId` has been revoked (at once on this replica, within the cache TTL of
   * 5 s on others): long-lived holders of a key's authority (Cap'n Web capabilities) ask again.
   */
  readonly stillValid: (keyId: string) => Effect.Effect<void, Unauthorized>
  /** The principal of key `keyId` as it is now (a console sign-in made with it acts as it); revoked: 401. */
  readonly principal: (keyId: string) => Effect.Effect<Principal, Unauthorized>
  readonly create: (
    name: string,
    scopes: ReadonlyArray<ApiScope>,
    project?: string,
    limits?: KeyLimits,
  ) => Effect.Effect<CreatedApiKey>
  /** Keys of `project`, or of every project when undefined. */
  readonly list: (project: string | undefined) => Effect.Effect<ReadonlyArray<ApiKey>>
  /** `project`: the key must belong to it (else not found); undefined: any project. */
  readonly revoke: (id: string, project?: string) => Effect.Effect<ApiKey, ApiKeyNotFound>
  /** Merges `limits` into the key's (null removes one); `project` as for revoke. */
  readonly updateLimits: (id: string, limits: KeyLimits, project?: string) => Effect.Effect<ApiKey, ApiKeyNotFound>
  /** Revokes every key of a project (the project is being deleted). */
  readonly revokeProject: (project: string) => Effect.Effect<void>
  /** On a fresh database: create an admin key and write it to a 0600 file in the data dir. */
  readonly bootstrap: Effect.Effect<void>
}>()("paws/control/ApiKeys") {
  static readonly layer = Layer.effect(
    ApiKeys,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const config = yield* ControlConfig
      const audit = yield* AuditLog
      const cache = new Map<
        string,
        { hash: Buffer; scopes: Array<ApiScope>; project: string; limits: KeyLimits; revoked: boolean; at: number }
      >()
      const lastTouched = new Map<string, number>()

      const unauthorized = (message: string) => new Unauthorized({ message })

      const lookup = Effect.fnUntraced(function* (id: string, now: number, maxAgeMs = cacheTtlMs) {
        const hit = cache.get(id)
        if (hit !== undefined && now - hit.at < maxAgeMs) return hit
        const rows = yield* sql<KeyRow>`SELECT * FROM api_keys WHERE id = ${id}`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return undefined
        const entry = {
          hash: Buffer.from(row.secret_hash, "hex"),
          scopes: [...decodeScopes(row.scopes.split(","))],
          project: row.project,
          limits: decodeLimits(json(row.limits)),
          revoked: row.revoked_at !== null,
          at: now,
        }
        cache.set(id, entry)
        return entry
      })

      const authenticate = Effect.fnUntraced(function* (token: string) {
        if (token === "") {
          return yield* unauthorized("missing API key: send `Authorization: Bearer <key>`")
        }
        const parsed = parseBearer("paws", token)
        if (parsed === undefined) return yield* unauthorized("malformed API key")
        const { id, secret } = parsed
        const now = yield* Clock.currentTimeMillis
        const entry = yield* lookup(id, now)
        if (entry === undefined || !secretMatches(entry.hash, secret)) {
          return yield* unauthorized("invalid API key")
        }
        if (entry.revoked) return yield* unauthorized("API key has been revoked")
        // Record use at most once a minute per key, off the request path.
        if (now - (lastTouched.get(id) ?? 0) > 60_000) {
          lastTouched.set(id, now)
          yield* Effect.forkDetach(sql`UPDATE api_keys SET last_used_at = now() WHERE id = ${id}`.pipe(Effect.ignore))
        }
        return { keyId: id, scopes: entry.scopes, project: entry.project, limits: entry.limits }
      })

      const stillValid = Effect.fnUntraced(function* (keyId: string) {
        // 4 s, not the 5 s TTL: with a check every second, a revocation on another replica bites within 5 s.
        const entry = yield* lookup(keyId, yield* Clock.currentTimeMillis, cacheTtlMs - 1_000)
        if (entry === undefined || entry.revoked) return yield* unauthorized("API key has been revoked")
      })

      const principal = Effect.fnUntraced(function* (keyId: string) {
        const entry = yield* lookup(keyId, yield* Clock.currentTimeMillis)
        if (entry === undefined || entry.revoked) return yield* unauthorized("API key has been revoked")
        return { keyId, scopes: entry.scopes, project: entry.project, limits: entry.limits }
      })

      const insertKey = Effect.fnUntraced(
        function* (name: string, scopes: ReadonlyArray<ApiScope>, project: string, limits: KeyLimits) {
          const { id, secretHash, bearer } = newBearer("paws")
          const unique = [...new Set(scopes)]
          const rows = yield* sql<KeyRow>`INSERT INTO api_keys (id, name, scopes, secret_hash, project, limits)
          VALUES (${id}, ${name}, ${unique.join(",")}, ${secretHash}, ${project}, ${JSON.stringify(limits)}::jsonb)
          RETURNING *`.pipe(Effect.orDie)
          return { key: toApiKey(rows[0]!), secret: bearer }
        },
      )

      const recordCreated = (created: CreatedApiKey) =>
        recordCredential(audit, "apikey.created", created.key.id, {
          name: created.key.name,
          scopes: created.key.scopes,
          project: created.key.project,
        })

      const create = Effect.fn("ApiKeys.create")(
        function* (name: string, scopes: ReadonlyArray<ApiScope>, project = defaultProject, limits: KeyLimits = {}) {
          return yield* Effect.tap(insertKey(name, scopes, project, limits), recordCreated)
        },
      )

      const inProject = (project: string | undefined) => project === undefined ? sql`TRUE` : sql`project = ${project}`

      const list = (project: string | undefined) =>
        sql<KeyRow>`SELECT * FROM api_keys WHERE ${inProject(project)} ORDER BY created_at, id`.pipe(
          Effect.map((rows) => rows.map(toApiKey)),
          Effect.orDie,
        )

      const notFound = (id: string) => new ApiKeyNotFound({ keyId: id, message: `no API key ${id}` })

      const revoke = Effect.fn("ApiKeys.revoke")(function* (id: string, project?: string) {
        const rows = yield* sql<KeyRow>`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE id = ${id} AND ${inProject(project)} RETURNING *`.pipe(Effect.orDie)
        cache.delete(id)
        if (rows[0] === undefined) return yield* notFound(id)
        yield* recordCredential(audit, "apikey.revoked", id, { name: rows[0].name })
        return toApiKey(rows[0])
      })

      const updateLimits = Effect.fn("ApiKeys.updateLimits")(
        function* (id: string, limits: KeyLimits, project?: string) {
          const rows = yield* sql<KeyRow>`UPDATE api_keys SET limits = jsonb_strip_nulls(limits || ${
            JSON.stringify(limits)
          }::jsonb)
          WHERE id = ${id} AND ${inProject(project)} RETURNING *`.pipe(Effect.orDie)
          cache.delete(id)
          if (rows[0] === undefined) return yield* notFound(id)
          return toApiKey(rows[0])
        },
      )

      const revokeProject = (project: string) =>
        sql<{ id: string }>`UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE project = ${project} RETURNING id`.pipe(
          Effect.map((rows) => rows.forEach((r) => cache.delete(r.id))),
          Effect.orDie,
        )

      // Replicas starting together on an empty database: the advisory lock lets exactly one create the key.
      // Recorded after the commit: an audit append inside this transaction would wait for its connection.
      const bootstrap = sql.withTransaction(Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(7061776)`
        const [{ n }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM api_keys`) as [{ n: number }]
        if (n > 0) return undefined
        const created = yield* insertKey("admin (created on first start)", ["admin"], defaultProject, {})
        const file = resolve(join(config.dataDir, "admin.key"))
        mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
        writeFileSync(file, created.secret + "\n", { mode: 0o600 })
        chmodSync(file, 0o600) // a file left from an earlier database may have other modes
        yield* Effect.logWarning("created the first admin API key; it is shown nowhere else").pipe(
          Effect.annotateLogs({ file }),
        )
        return created
      })).pipe(
        Effect.flatMap((created) => (created === undefined ? Effect.void : recordCreated(created))),
        Effect.orDie,
        Effect.withSpan("ApiKeys.bootstrap"),
      )

      return ApiKeys.of({
        authenticate,
        stillValid,
        principal,
        create,
        list,
        revoke,
        updateLimits,
        revokeProject,
        bootstrap,
      })
    }),
  )
}
