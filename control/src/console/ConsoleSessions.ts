import { type ApiScope, type ConsoleIdentity, type Principal, Unauthorized } from "@paws/core"
import { Context, Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { ApiKeys } from "../ApiKeys.ts"
import { iso } from "../Rows.ts"
import { ConsoleConfig } from "./ConsoleConfig.ts"

/** Who a new sign-in is for: an API key (scopes and project follow the key), or an OIDC user. */
export type SignIn =
  | { readonly via: "key"; readonly keyId: string; readonly scopes: ReadonlyArray<ApiScope>; readonly project: string }
  | {
    readonly via: "oidc"
    readonly subject: string
    readonly email: string | undefined
    readonly scopes: ReadonlyArray<ApiScope>
    readonly project: string
  }

/** A live sign-in: what the API acts as, and what the console is shown. */
export interface ConsoleSession {
  readonly principal: Principal
  readonly identity: ConsoleIdentity
}

interface Row {
  readonly via: "key" | "oidc"
  readonly actor: string
  readonly key_id: string | null
  readonly email: string | null
  readonly scopes: string
  readonly project: string
  readonly expires_at: unknown
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")
/** Derived from the cookie, so nothing more is stored; the cookie (HttpOnly) cannot be recovered from it. */
const csrfTokenOf = (cookie: string) => createHash("sha256").update(`paws-csrf:${cookie}`).digest("base64url")
const signedOut = (message: string) => new Unauthorized({ message })

/**
 * Console sign-ins behind the `paws_session` cookie, in PostgreSQL (hashed, with expiry) so any
 * replica accepts them. A key's sign-in asks the key at each request: a revoked key ends it.
 */
export class ConsoleSessions extends Context.Service<ConsoleSessions, {
  /** A new sign-in: the cookie value (shown to this response only) and what it is signed in as. */
  readonly create: (who: SignIn) => Effect.Effect<{ readonly cookie: string; readonly session: ConsoleSession }>
  readonly resolve: (cookie: string) => Effect.Effect<ConsoleSession, Unauthorized>
  readonly end: (cookie: string) => Effect.Effect<void>
  /** Whether `header` is the CSRF token of the sign-in behind `cookie` (constant-length compare). */
  readonly csrfMatches: (cookie: string, header: string | undefined) => boolean
}>()("paws/control/ConsoleSessions") {
  static readonly layer = Layer.effect(
    ConsoleSessions,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const keys = yield* ApiKeys
      const config = yield* ConsoleConfig
      const ttlMs = Duration.toMillis(config.sessionTtl)

      const toSession = (cookie: string, row: Row, principal: Principal): ConsoleSession => ({
        principal,
        identity: {
          actor: row.actor,
          project: principal.project,
          scopes: principal.scopes,
          csrfToken: csrfTokenOf(cookie),
          expiresAt: iso(row.expires_at)!,
          via: row.via,
          ...(row.email === null ? {} : { email: row.email }),
        },
      })

      const create = Effect.fn("ConsoleSessions.create")(function* (who: SignIn) {
        const cookie = randomBytes(32).toString("base64url")
        const actor = who.via === "key" ? `key:${who.keyId}` : `oidc:${who.subject}`
        const email = who.via === "oidc" ? who.email ?? null : null
        const expiresAt = new Date(Date.now() + ttlMs)
        // Expired sign-ins nobody ended are swept at each new one, so the table holds (nearly) only live ones.
        yield* sql`DELETE FROM console_sessions WHERE expires_at < now()`.pipe(Effect.orDie)
        const rows = yield* sql<Row>`INSERT INTO console_sessions
          (hash, via, actor, key_id, email, scopes, project, expires_at)
          VALUES (${sha256(cookie)}, ${who.via}, ${actor}, ${who.via === "key" ? who.keyId : null}, ${email},
            ${who.scopes.join(",")}, ${who.project}, ${expiresAt})
          RETURNING *`.pipe(Effect.orDie)
        const principal: Principal = who.via === "key"
          ? yield* keys.principal(who.keyId).pipe(Effect.orDie)
          : { keyId: actor, scopes: who.scopes, project: who.project, limits: {} }
        return { cookie, session: toSession(cookie, rows[0]!, principal) }
      })

      const end = (cookie: string) =>
        sql`DELETE FROM console_sessions WHERE hash = ${sha256(cookie)}`.pipe(Effect.asVoid, Effect.orDie)

      const resolve = Effect.fn("ConsoleSessions.resolve")(function* (cookie: string) {
        if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return yield* signedOut("not signed in: the console cookie is invalid")
        const rows = yield* sql<Row>`SELECT * FROM console_sessions WHERE hash = ${sha256(cookie)}`.pipe(Effect.orDie)
        const row = rows[0]
        if (row === undefined) return yield* signedOut("not signed in: the console sign-in ended; sign in again")
        if (new Date(iso(row.expires_at)!).getTime() <= Date.now()) {
          yield* end(cookie)
          return yield* signedOut("the console sign-in expired; sign in again")
        }
        if (row.key_id === null) {
          const principal: Principal = {
            keyId: row.actor,
            scopes: row.scopes.split(",").filter((s) => s !== "") as Array<ApiScope>,
            project: row.project,
            limits: {},
          }
          return toSession(cookie, row, principal)
        }
        const principal = yield* keys.principal(row.key_id).pipe(
          Effect.tapError(() => end(cookie)),
          Effect.mapError(() => signedOut("the API key this console sign-in was made with has been revoked")),
        )
        return toSession(cookie, row, principal)
      })

      const csrfMatches = (cookie: string, header: string | undefined) => {
        const expected = Buffer.from(csrfTokenOf(cookie))
        const given = Buffer.from(header ?? "")
        return given.length === expected.length && timingSafeEqual(given, expected)
      }

      return ConsoleSessions.of({ create, resolve, end, csrfMatches })
    }),
  )
}
