import { type CreatedNodeToken, type NodeToken, NodeTokenNotFound } from "@paws/core"
import { Context, Deferred, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { iso } from "./Rows.ts"

/** Node tokens look like `pawsn_<12-char id>_<43-char secret>`; the id finds the row, the secret is checked by hash. */
const tokenPattern = /^pawsn_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/

const hashSecret = (secret: string) => createHash("sha256").update(secret).digest()
const newTokenId = () => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  return Array.from(randomBytes(12), (b) => alphabet[b % 36]).join("")
}

interface TokenRow {
  readonly id: string
  readonly name: string
  readonly secret_hash: string
  readonly created_at: unknown
  readonly last_used_at: unknown
  readonly revoked_at: unknown
}

const toNodeToken = (row: TokenRow): NodeToken => ({
  id: row.id,
  name: row.name,
  createdAt: iso(row.created_at)!,
  lastUsedAt: iso(row.last_used_at),
  revokedAt: iso(row.revoked_at),
})

/**
 * Tokens with which nodes call home. Like API keys: 256-bit secrets shown once, stored as
 * SHA-256 hashes. Nodes connect rarely, so every check reads the database (no cache): a
 * revoke refuses the next connection at once, and `revoked` lets open connections close.
 */
export class NodeTokens extends Context.Service<NodeTokens, {
  /** The token id when `token` is valid and not revoked, else undefined. */
  readonly verify: (token: string) => Effect.Effect<string | undefined>
  readonly create: (name: string) => Effect.Effect<CreatedNodeToken>
  readonly list: Effect.Effect<ReadonlyArray<NodeToken>>
  readonly revoke: (id: string) => Effect.Effect<NodeToken, NodeTokenNotFound>
  /** Completes when token `id` is revoked (on this replica). */
  readonly revoked: (id: string) => Effect.Effect<void>
}>()("paws/control/NodeTokens") {
  static readonly layer = Layer.effect(
    NodeTokens,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const watchers = new Map<string, Deferred.Deferred<void>>()
      const watcher = (id: string) => {
        let d = watchers.get(id)
        if (d === undefined) watchers.set(id, d = Deferred.makeUnsafe<void>())
        return d
      }

      const verify = Effect.fnUntraced(function* (token: string) {
        const match = tokenPattern.exec(token)
        if (match === null) return undefined
        const [, id, secret] = match as unknown as [string, string, string]
        const rows = yield* sql<TokenRow>`SELECT * FROM node_tokens WHERE id = ${id}`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined || row.revoked_at !== null) return undefined
        if (!timingSafeEqual(Buffer.from(row.secret_hash, "hex"), hashSecret(secret))) return undefined
        yield* sql`UPDATE node_tokens SET last_used_at = now() WHERE id = ${id}`.pipe(Effect.ignore)
        return id
      })

      const create = Effect.fn("NodeTokens.create")(function* (name: string) {
        const id = newTokenId()
        const secret = randomBytes(32).toString("base64url")
        yield* sql`INSERT INTO node_tokens (id, name, secret_hash)
          VALUES (${id}, ${name}, ${hashSecret(secret).toString("hex")})`.pipe(Effect.orDie)
        return { id, name, token: `pawsn_${id}_${secret}` }
      })

      const list = sql<TokenRow>`SELECT * FROM node_tokens ORDER BY created_at, id`.pipe(
        Effect.map((rows) => rows.map(toNodeToken)),
        Effect.orDie,
      )

      const revoke = Effect.fn("NodeTokens.revoke")(function* (id: string) {
        const rows = yield* sql<TokenRow>`UPDATE node_tokens SET revoked_at = coalesce(revoked_at, now())
          WHERE id = ${id} RETURNING *`.pipe(Effect.orDie)
        if (rows[0] === undefined) return yield* new NodeTokenNotFound({ tokenId: id, message: `no node token ${id}` })
        yield* Deferred.succeed(watcher(id), undefined)
        return toNodeToken(rows[0])
      })

      return NodeTokens.of({
        verify,
        create,
        list,
        revoke,
        revoked: (id) => Effect.suspend(() => Deferred.await(watcher(id))),
      })
    }),
  )
}
