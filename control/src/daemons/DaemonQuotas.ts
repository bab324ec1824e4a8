import { type DaemonLimits, newSessionId, RateLimited, type SessionTrigger, withSessionDefaults } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { AuditLog } from "../audit/AuditLog.ts"
import { statusChange } from "../audit/SessionAudit.ts"
import { ControlConfig } from "../ControlConfig.ts"
import { EventFeed } from "../EventFeed.ts"
import { sessionPart } from "./DaemonRules.ts"
import type { StoredDaemon } from "./DaemonStore.ts"

const unfinished = ["awaiting_approval", "pending", "starting", "running"] as const
/** A concurrency limit frees up when a session ends, which no one can predict: a hint, not a promise. */
const concurrencyRetrySeconds = 10
export const rateLimitedReason = (limit: string) => `rate_limited: ${limit}`
/** Reasons of sessions that were no real invocation: they do not count against the invocation limits. */
const notCounted = { skipped: "skipped_while_running", limited: "rate_limited:%" } as const

const secondsToUtcMidnight = (now: number): number => {
  const day = 86_400_000
  return Math.max(1, Math.ceil((Math.floor(now / day) * day + day - now) / 1000))
}

/**
 * A daemon's own limits, counted from the sessions table (its `daemon` column) under an advisory
 * lock on `daemon:<name>` taken in the transaction that inserts the session: two replicas firing
 * at once cannot both take the last slot, and a restart forgets nothing. Also records a trigger
 * that fired over a limit as a visible, audited `cancelled` session instead of dropping it.
 */
export class DaemonQuotas extends Context.Service<DaemonQuotas, {
  /** Checks the daemon's limits; undefined when it has none. Run it inside the inserting transaction. */
  readonly guard: (daemon: StoredDaemon) => Effect.Effect<void, RateLimited> | undefined
  /** The limits other than concurrency, on their own (before `replace` cancels what runs). */
  readonly precheck: (daemon: StoredDaemon) => Effect.Effect<void, RateLimited>
  /** A session row created `cancelled` with reason `rate_limited: <limit>`, listed under the daemon. */
  readonly recordLimited: (
    daemon: StoredDaemon,
    trigger: SessionTrigger,
    limit: string,
    idempotencyKey: string | undefined,
  ) => Effect.Effect<string>
}>()("paws/control/DaemonQuotas") {
  static readonly layer = Layer.effect(
    DaemonQuotas,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { limits: sessionLimits } = yield* ControlConfig
      const feed = yield* EventFeed
      const audit = yield* AuditLog

      /** Invocations in the last `hours`, and seconds until the oldest of them leaves the window. */
      const invocations = (daemon: string, hours: number) =>
        sql<{ n: number; free_in: number | null }>`SELECT count(*)::int AS n,
            EXTRACT(EPOCH FROM min(created_at) + make_interval(hours => ${hours}) - now())::float8 AS free_in
          FROM sessions WHERE daemon = ${daemon} AND created_at > now() - make_interval(hours => ${hours})
            AND coalesce(reason, '') <> ${notCounted.skipped} AND coalesce(reason, '') NOT LIKE ${notCounted.limited}`
          .pipe(
            Effect.map((rows) => ({ n: Number(rows[0]?.n ?? 0), freeIn: Number(rows[0]?.free_in ?? 1) })),
            Effect.orDie,
          )
      const active = (daemon: string) =>
        sql<{ n: number }>`SELECT count(*)::int AS n FROM sessions
          WHERE daemon = ${daemon} AND status IN ${sql.in(unfinished)}`.pipe(
          Effect.map((rows) => Number(rows[0]?.n ?? 0)),
          Effect.orDie,
        )
      /** Minutes the daemon's sessions ran today (UTC), running ones up to now. */
      const minutesToday = (daemon: string) =>
        sql<{ m: number }>`WITH d AS (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start)
          SELECT coalesce(sum(EXTRACT(EPOCH FROM coalesce(completed_at, now()) - greatest(started_at, d.start))), 0)
            ::float8 / 60 AS m
          FROM sessions, d
          WHERE daemon = ${daemon} AND started_at IS NOT NULL AND (completed_at IS NULL OR completed_at > d.start)`
          .pipe(Effect.map((rows) => Number(rows[0]?.m ?? 0)), Effect.orDie)

      const limited = (limit: string, message: string, retryAfterSeconds: number) =>
        new RateLimited({
          message: `${message}; retry after ${retryAfterSeconds} s`,
          limit,
          retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)),
        })

      const check = (name: string, l: DaemonLimits) =>
        Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`daemon:${name}`}))`.pipe(Effect.orDie)
          const windows = [
            ["daemon.maxInvocationsPerHour", l.maxInvocationsPerHour, 1, "hour"],
            ["daemon.maxInvocationsPerDay", l.maxInvocationsPerDay, 24, "24 hours"],
          ] as const
          for (const [limit, max, hours, span] of windows) {
            if (max === undefined || max === null) continue
            const { n, freeIn } = yield* invocations(name, hours)
            if (n >= max) {
              return yield* limited(
                limit,
                `daemon ${name} may be invoked ${max} time(s) per ${span} and was ${n}`,
                freeIn,
              )
            }
          }
          const maxActive = l.maxConcurrentSessions
          if (maxActive !== undefined && maxActive !== null) {
            const n = yield* active(name)
            if (n >= maxActive) {
              return yield* limited(
                "daemon.maxConcurrentSessions",
                `daemon ${name} may have ${maxActive} unfinished session(s) and has ${n}`,
                concurrencyRetrySeconds,
              )
            }
          }
          const maxMinutes = l.maxSessionMinutesPerDay
          if (maxMinutes !== undefined && maxMinutes !== null) {
            const used = yield* minutesToday(name)
            if (used >= maxMinutes) {
              return yield* limited(
                "daemon.maxSessionMinutesPerDay",
                `daemon ${name} used ${used.toFixed(1)} of its ${maxMinutes} session-minutes today (UTC)`,
                secondsToUtcMidnight(Date.now()),
              )
            }
          }
        })

      const guard = (daemon: StoredDaemon) => {
        const l = daemon.view.limits
        if (l === undefined || Object.values(l).every((v) => v === undefined || v === null)) return undefined
        return check(daemon.view.name, l)
      }

      const recordLimited = Effect.fnUntraced(function* (
        daemon: StoredDaemon,
        trigger: SessionTrigger,
        limit: string,
        idempotencyKey: string | undefined,
      ) {
        const v = daemon.view
        const id = newSessionId()
        const reason = rateLimitedReason(limit)
        // The spec as shown (header names only): nothing runs, so no credential values are needed.
        const spec = withSessionDefaults(
          {
            ...sessionPart(v),
            ...(v.network === undefined ? {} : {
              network: {
                allowOut: v.network.allowOut,
                ...(v.network.credentials === undefined ? {} : { credentials: v.network.credentials }),
              },
            }),
          } as Parameters<typeof withSessionDefaults>[0],
          sessionLimits,
        )
        const event = (status: string, withReason: boolean) =>
          JSON.stringify({
            _tag: "status",
            status,
            at: new Date().toISOString(),
            ...(withReason ? { reason } : {}),
          })
        const inserted = yield* sql<{ id: string }>`WITH s AS (
            INSERT INTO sessions (id, status, project, spec, key_id, idempotency_key, daemon, trigger, reason,
              completed_at)
            VALUES (${id}, 'cancelled', ${daemon.project}, ${JSON.stringify(spec)}::jsonb, ${`daemon:${v.name}`},
              ${idempotencyKey ?? null}, ${v.name}, ${JSON.stringify(trigger)}::jsonb, ${reason}, now())
            ON CONFLICT (key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING id
          ), e AS (
            INSERT INTO session_events (session_id, event)
            SELECT id, ${event("pending", false)}::jsonb FROM s
            UNION ALL SELECT id, ${event("cancelled", true)}::jsonb FROM s
          )
          SELECT id FROM s`.pipe(Effect.orDie)
        if (inserted.length === 0) return id
        yield* audit.record(statusChange(id, "cancelled", { reason }, `key:daemon:${v.name}`))
        yield* feed.publish(id)
        return id
      })

      const precheck = (daemon: StoredDaemon) => {
        const l = daemon.view.limits
        return l === undefined
          ? Effect.void
          : sql.withTransaction(check(daemon.view.name, { ...l, maxConcurrentSessions: null })).pipe(
            Effect.catchTag("SqlError", Effect.die),
          )
      }

      return DaemonQuotas.of({ guard, precheck, recordLimited })
    }),
  )
}
