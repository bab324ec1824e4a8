import { type ExposePort, pinDigits, pinLockoutMs, pinMaxFailures, type PortAccess, type SessionId } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes, randomInt, scryptSync, timingSafeEqual } from "node:crypto"
import { hashSecret, secretMatches } from "./BearerSecrets.ts"
import { iso } from "./Rows.ts"

export interface ExposureRow {
  readonly id: string
  readonly session_id: string
  readonly port: number
  readonly access: PortAccess
  readonly secret_hash: string | null
  readonly failures: number
  readonly locked_until: unknown
  readonly created_at: unknown
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

/** What a PIN attempt came to; `locked` also when the right PIN comes during a lockout. */
export type PinOutcome = "ok" | "wrong" | "locked"

/** How long a cookie granted after a token or PIN stays good (the exposure ending ends it sooner). */
const grantMs = 12 * 60 * 60 * 1000

/** A PIN is 8 digits (10^8): slow-hashed with its own salt, so a leaked row is not a lookup table away. */
const hashPin = (pin: string, salt: Buffer = randomBytes(16)) =>
  `${salt.toString("hex")}:${scryptSync(pin, salt, 32).toString("hex")}`
const pinMatches = (stored: string, pin: string) => {
  const [salt, hash] = stored.split(":")
  const expected = Buffer.from(hash ?? "", "hex")
  return expected.length === 32 && timingSafeEqual(expected, scryptSync(pin, Buffer.from(salt ?? "", "hex"), 32))
}

/**
 * Exposed guest ports and who may reach them. The path id (`/p/{id}/`) finds the exposure and is
 * no secret; the token or PIN is, shown once and kept only hashed. Wrong PINs count per exposure
 * and lock it for a while after `pinMaxFailures`; a right token or PIN grants a cookie.
 */
export class PortExposures extends Context.Service<PortExposures, {
  readonly create: (
    sessionId: SessionId,
    request: ExposePort,
  ) => Effect.Effect<{ readonly row: ExposureRow; readonly token?: string; readonly pin?: string }>
  readonly list: (sessionId: SessionId) => Effect.Effect<ReadonlyArray<ExposureRow>>
  readonly find: (id: string) => Effect.Effect<ExposureRow | undefined>
  readonly tokenMatches: (row: ExposureRow, token: string) => boolean
  readonly tryPin: (row: ExposureRow, pin: string) => Effect.Effect<PinOutcome>
  /** A new cookie value for the exposure, good until `expiresAt` (default: 12 hours). */
  readonly grant: (id: string, expiresAt?: Date) => Effect.Effect<string>
  /** Spends a grant passed in a URL once (sso in the host form) for a fresh one with its expiry; undefined: no such. */
  readonly exchange: (id: string, value: string) => Effect.Effect<string | undefined>
  readonly granted: (id: string, cookie: string) => Effect.Effect<boolean>
}>()("paws/control/PortExposures") {
  static readonly layer = Layer.effect(
    PortExposures,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const create = Effect.fn("PortExposures.create")(function* (sessionId: SessionId, request: ExposePort) {
        // 24 of [a-z0-9] (~124 bits): a DNS label for the host form, an unguessable path for the path form.
        const id = Array.from(randomBytes(24), (b) => idAlphabet[b % 36]).join("")
        const token = request.access === "token" ? randomBytes(32).toString("base64url") : undefined
        const pin = request.access === "pin"
          ? Array.from({ length: pinDigits }, () => randomInt(10)).join("")
          : undefined
        const secretHash = token !== undefined
          ? hashSecret(token).toString("hex")
          : pin !== undefined
          ? hashPin(pin)
          : null
        const rows = yield* sql<ExposureRow>`INSERT INTO port_exposures (id, session_id, port, access, secret_hash)
          VALUES (${id}, ${sessionId}, ${request.port}, ${request.access}, ${secretHash}) RETURNING *`.pipe(
          Effect.orDie,
        )
        return { row: rows[0]!, ...(token === undefined ? {} : { token }), ...(pin === undefined ? {} : { pin }) }
      })
      const tryPin = Effect.fn("PortExposures.tryPin")(function* (row: ExposureRow, pin: string) {
        // Re-read: the lock and the count are shared by every request (and replica).
        const fresh = (yield* sql<ExposureRow>`SELECT * FROM port_exposures WHERE id = ${row.id}`.pipe(Effect.orDie))[0]
        if (fresh === undefined || fresh.secret_hash === null) return "wrong" as const
        const locked = iso(fresh.locked_until)
        if (locked !== null && Date.parse(locked) > Date.now()) return "locked" as const
        if (/^[0-9]{1,32}$/.test(pin) && pinMatches(fresh.secret_hash, pin)) {
          yield* sql`UPDATE port_exposures SET failures = 0, locked_until = NULL WHERE id = ${row.id}`.pipe(
            Effect.orDie,
          )
          return "ok" as const
        }
        const lockUntil = new Date(Date.now() + pinLockoutMs)
        const updated = yield* sql<Pick<ExposureRow, "failures">>`UPDATE port_exposures
          SET failures = failures + 1,
              locked_until = CASE WHEN failures + 1 >= ${pinMaxFailures} THEN ${lockUntil} ELSE locked_until END
          WHERE id = ${row.id} RETURNING failures`.pipe(Effect.orDie)
        return (updated[0]?.failures ?? pinMaxFailures) >= pinMaxFailures ? "locked" as const : "wrong" as const
      })
      const grant = Effect.fn("PortExposures.grant")(function* (id: string, expiresAt?: Date) {
        const cookie = randomBytes(32).toString("base64url")
        yield* sql`INSERT INTO port_exposure_grants (hash, exposure_id, expires_at)
          VALUES (${hashSecret(cookie).toString("hex")}, ${id}, ${expiresAt ?? new Date(Date.now() + grantMs)})`.pipe(
          Effect.orDie,
        )
        return cookie
      })
      const exchange = Effect.fn("PortExposures.exchange")(function* (id: string, value: string) {
        const spent = yield* sql<{ readonly expires_at: unknown }>`DELETE FROM port_exposure_grants
          WHERE hash = ${hashSecret(value).toString("hex")} AND exposure_id = ${id} AND expires_at > now()
          RETURNING expires_at`.pipe(Effect.orDie)
        if (spent[0] === undefined) return undefined
        return yield* grant(id, new Date(iso(spent[0].expires_at)!))
      })
      return PortExposures.of({
        create,
        list: (sessionId) =>
          sql<ExposureRow>`SELECT * FROM port_exposures WHERE session_id = ${sessionId} ORDER BY created_at, id`.pipe(
            Effect.orDie,
          ),
        find: (id) =>
          sql<ExposureRow>`SELECT * FROM port_exposures WHERE id = ${id}`.pipe(
            Effect.map((rows) => rows[0]),
            Effect.orDie,
          ),
        tokenMatches: (row, token) =>
          row.access === "token" && row.secret_hash !== null &&
          secretMatches(Buffer.from(row.secret_hash, "hex"), token),
        tryPin,
        grant,
        exchange,
        granted: (id, cookie) =>
          sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM port_exposure_grants
            WHERE hash = ${hashSecret(cookie).toString("hex")} AND exposure_id = ${id} AND expires_at > now()`.pipe(
            Effect.map((rows) => (rows[0]?.n ?? 0) > 0),
            Effect.orDie,
          ),
      })
    }),
  )
}
