import { type Principal, type ProjectLimits, RateLimited } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { LimitCounter } from "./LimitCounter.ts"

const unfinished = ["awaiting_approval", "pending", "starting", "running"] as const
/** A concurrency limit frees up when a session ends, which no one can predict: a hint, not a promise. */
const concurrencyRetrySeconds = 10

const secondsToUtcMidnight = (now: number): number => {
  const day = 86_400_000
  return Math.max(1, Math.ceil((Math.floor(now / day) * day + day - now) / 1000))
}

/**
 * Limits that decide whether a request or a new session is admitted. Counters are in
 * PostgreSQL: token buckets (LimitCounter) for request rates; unfinished sessions and today's
 * session-minutes are counted from the sessions table itself, under an advisory lock per
 * limited subject, so that two replicas admitting at once cannot both take the last slot.
 */
export class Quotas extends Context.Service<Quotas, {
  /** The API key's requests-per-second bucket; a key without that limit costs nothing. */
  readonly admitRequest: (p: Principal) => Effect.Effect<void, RateLimited>
  /**
   * Checks the key's and the project's session limits; undefined when none apply. Run it in the
   * transaction that inserts the session (the locks it takes are held until that commits).
   */
  readonly sessionGuard: (p: Principal, project: ProjectLimits) => Effect.Effect<void, RateLimited> | undefined
}>()("paws/control/Quotas") {
  static readonly layer = Layer.effect(
    Quotas,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const counter = yield* LimitCounter

      const admitRequest = Effect.fnUntraced(function* (p: Principal) {
        const rate = p.limits.requestsPerSecond
        if (rate === undefined || rate === null) return
        const burst = p.limits.requestsBurst ?? rate
        const taken = yield* counter.take(`key:${p.keyId}`, rate, burst)
        if (!taken.allowed) {
          return yield* new RateLimited({
            message: `API key ${p.keyId} is limited to ${rate} requests per second (burst ${burst}); ` +
              `retry after ${taken.retryAfterSeconds} s`,
            limit: "key.requestsPerSecond",
            retryAfterSeconds: taken.retryAfterSeconds,
          })
        }
      })

      const lock = (subject: string) => sql`SELECT pg_advisory_xact_lock(hashtext(${subject}))`.pipe(Effect.orDie)
      const count = (column: "key_id" | "project", value: string) =>
        sql<{ n: number }>`SELECT count(*)::int AS n FROM sessions
          WHERE ${sql(column)} = ${value} AND status IN ${sql.in(unfinished)}`.pipe(
          Effect.map((rows) => Number(rows[0]?.n ?? 0)),
          Effect.orDie,
        )
      /** Minutes that the project's sessions ran today (UTC), running ones up to now. */
      const minutesToday = (project: string) =>
        sql<{ m: number }>`WITH d AS (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start)
          SELECT coalesce(sum(EXTRACT(EPOCH FROM coalesce(completed_at, now()) - greatest(started_at, d.start))), 0)
            ::float8 / 60 AS m
          FROM sessions, d
          WHERE project = ${project} AND started_at IS NOT NULL AND (completed_at IS NULL OR completed_at > d.start)`
          .pipe(Effect.map((rows) => Number(rows[0]?.m ?? 0)), Effect.orDie)

      const limited = (limit: string, message: string, retryAfterSeconds: number) =>
        new RateLimited({ message: `${message}; retry after ${retryAfterSeconds} s`, limit, retryAfterSeconds })

      const sessionGuard = (p: Principal, project: ProjectLimits) => {
        const keyMax = p.limits.maxConcurrentSessions ?? undefined
        const projectMax = project.maxConcurrentSessions ?? undefined
        const minutesMax = project.maxSessionMinutesPerDay ?? undefined
        if (keyMax === undefined && projectMax === undefined && minutesMax === undefined) return undefined
        return Effect.gen(function* () {
          if (keyMax !== undefined) {
            yield* lock(`key:${p.keyId}`)
            const n = yield* count("key_id", p.keyId)
            if (n >= keyMax) {
              return yield* limited(
                "key.maxConcurrentSessions",
                `API key ${p.keyId} may have ${keyMax} unfinished session(s) and has ${n}`,
                concurrencyRetrySeconds,
              )
            }
          }
          if (projectMax !== undefined || minutesMax !== undefined) yield* lock(`project:${p.project}`)
          if (projectMax !== undefined) {
            const n = yield* count("project", p.project)
            if (n >= projectMax) {
              return yield* limited(
                "project.maxConcurrentSessions",
                `project ${p.project} may have ${projectMax} unfinished session(s) and has ${n}`,
                concurrencyRetrySeconds,
              )
            }
          }
          if (minutesMax !== undefined) {
            const used = yield* minutesToday(p.project)
            if (used >= minutesMax) {
              return yield* limited(
                "project.maxSessionMinutesPerDay",
                `project ${p.project} used ${used.toFixed(1)} of its ${minutesMax} session-minutes today (UTC)`,
                secondsToUtcMidnight(Date.now()),
              )
            }
          }
        })
      }

      return Quotas.of({ admitRequest, sessionGuard })
    }),
  )
}
