import { type CreatedNodeToken, NodeToken, NodeTokenNotFound } from "@paws/core"
import { Context, Deferred, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { AuditLog } from "./audit/AuditLog.ts"
import { recordCredential } from "./audit/CredentialAudit.ts"
import { newBearer, parseBearer, secretMatches } from "./BearerSecrets.ts"
import { iso, rowDecoder } from "./Rows.ts"

/** Node tokens look like `pawsn_<12-char id>_<43-char secret>`; the id finds the row, the secret is checked by hash. */

interface TokenRow {
  readonly id: string
  readonly name: string
  readonly secret_hash: string
  readonly node_id: string | null
  readonly max_concurrent: number | null
  readonly created_at: unknown
  readonly last_used_at: unknown
  readonly revoked_at: unknown
}

const decodeNodeToken = rowDecoder(NodeToken, "node token")

const toNodeToken = (row: TokenRow): NodeToken =>
  decodeNodeToken({
    id: row.id,
    name: row.name,
    nodeId: row.node_id,
    maxConcurrent: row.max_concurrent,
    createdAt: iso(row.created_at),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
  })

/** What a token allows the node presenting it: refused when it is bound to another node id. */
export type NodeTokenClaim =
  | { readonly _tag: "Granted"; readonly maxConcurrent: number | null }
  | { readonly _tag: "BoundElsewhere"; readonly nodeId: string }

/**
 * Tokens with which nodes call home. Like API keys: 256-bit secrets shown once, stored as
 * SHA-256 hashes. Nodes connect rarely, so every check reads the database (no cache): a
 * revoke refuses the next connection at once, and `revoked` lets open connections close.
 * Each token is bound to one node id (given at creation, else taken by the first node that
 * connects), so a token leaked from one node cannot impersonate another.
 */
export class NodeTokens extends Context.Service<NodeTokens, {
  /** The token id when `token` is valid and not revoked, else undefined. */
  readonly verify: (token: string) => Effect.Effect<string | undefined>
  /** Binds token `id` to `nodeId` if it is unbound; says whether `nodeId` may use it. */
  readonly claim: (id: string, nodeId: string) => Effect.Effect<NodeTokenClaim>
  readonly create: (
    name: string,
    options?: { readonly nodeId?: string | undefined; readonly maxConcurrent?: number | undefined },
  ) => Effect.Effect<CreatedNodeToken>
  readonly list: Effect.Effect<ReadonlyArray<NodeToken>>
  readonly revoke: (id: string) => Effect.Effect<NodeToken, NodeTokenNotFound>
  /** Completes when token `id` is revoked (on this replica). */
  readonly revoked: (id: string) => Effect.Effect<void>
}>()("paws/control/NodeTokens") {
  static readonly layer = Layer.effect(
    NodeTokens,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const audit = yield* AuditLog
      const watchers = new Map<string, Deferred.Deferred<void>>()
      const watcher = (id: string) => {
        let d = watchers.get(id)
        if (d === undefined) watchers.set(id, d = Deferred.makeUnsafe<void>())
        return d
      }

      const verify = Effect.fnUntraced(function* (token: string) {
        const parsed = parseBearer("pawsn", token)
        if (parsed === undefined) return undefined
        const { id, secret } = parsed
        const rows = yield* sql<TokenRow>`SELECT * FROM node_tokens WHERE id = ${id}`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined || row.revoked_at !== null) return undefined
        if (!secretMatches(Buffer.from(row.secret_hash, "hex"), secret)) return undefined
        yield* sql`UPDATE node_tokens SET last_used_at = now() WHERE id = ${id}`.pipe(Effect.ignore)
        return id
      })

      // One statement, so two nodes racing on an unbound token cannot both bind it.
      const claim = Effect.fnUntraced(function* (id: string, nodeId: string) {
        const rows = yield* sql<Pick<TokenRow, "node_id" | "max_concurrent">>`UPDATE node_tokens
          SET node_id = coalesce(node_id, ${nodeId}) WHERE id = ${id}
          RETURNING node_id, max_concurrent`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return { _tag: "BoundElsewhere", nodeId: "(deleted)" } as const
        return row.node_id === nodeId
          ? { _tag: "Granted", maxConcurrent: row.max_concurrent } as const
          : { _tag: "BoundElsewhere", nodeId: row.node_id ?? "" } as const
      })

      const create = Effect.fn("NodeTokens.create")(function* (
        name: string,
        options: { readonly nodeId?: string | undefined; readonly maxConcurrent?: number | undefined } = {},
      ) {
        const { id, secretHash, bearer } = newBearer("pawsn")
        const nodeId = options.nodeId ?? null
        const maxConcurrent = options.maxConcurrent ?? null
        yield* sql`INSERT INTO node_tokens (id, name, secret_hash, node_id, max_concurrent)
          VALUES (${id}, ${name}, ${secretHash}, ${nodeId}, ${maxConcurrent})`.pipe(
          Effect.orDie,
        )
        yield* recordCredential(audit, "nodetoken.created", id, { name, nodeId, maxConcurrent })
        return { id, name, nodeId, maxConcurrent, token: bearer }
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
        yield* recordCredential(audit, "nodetoken.revoked", id, { name: rows[0].name })
        return toNodeToken(rows[0])
      })

      return NodeTokens.of({
        verify,
        claim,
        create,
        list,
        revoke,
        revoked: (id) => Effect.suspend(() => Deferred.await(watcher(id))),
      })
    }),
  )
}
