import { Schema } from "effect"

/** Ceilings past which a limit is a mistake, not a policy: refused with a 400 naming the field. */
export const limitCeilings = {
  requestsPerSecond: 10_000,
  concurrentSessions: 100_000,
  sessionMinutesPerDay: 10_000_000,
} as const

const bounded = (maximum: number, what: string, minimum = 0) =>
  Schema.NullOr(
    Schema.Int.pipe(
      Schema.check(
        Schema.isBetween({ minimum, maximum }, { message: `must be an integer ${what} from ${minimum} to ${maximum}` }),
      ),
    ),
  )

/**
 * Limits of one API key; a missing or null field means "no limit". `requestsPerSecond` is a
 * token bucket (burst = `requestsBurst`, default the rate); 0 concurrent sessions refuses all.
 */
export const KeyLimits = Schema.Struct({
  requestsPerSecond: Schema.optionalKey(bounded(limitCeilings.requestsPerSecond, "of requests per second", 1)),
  requestsBurst: Schema.optionalKey(bounded(limitCeilings.requestsPerSecond * 10, "of requests", 1)),
  maxConcurrentSessions: Schema.optionalKey(bounded(limitCeilings.concurrentSessions, "of sessions")),
}).annotate({ identifier: "KeyLimits" })
export type KeyLimits = typeof KeyLimits.Type

/** Quotas of one project; a missing or null field means "no limit". Days are UTC days. */
export const ProjectLimits = Schema.Struct({
  maxConcurrentSessions: Schema.optionalKey(bounded(limitCeilings.concurrentSessions, "of sessions")),
  maxSessionMinutesPerDay: Schema.optionalKey(bounded(limitCeilings.sessionMinutesPerDay, "of minutes")),
}).annotate({ identifier: "ProjectLimits" })
export type ProjectLimits = typeof ProjectLimits.Type

/**
 * A limit was hit: answered 429 with `Retry-After` (seconds). `limit` names it, e.g.
 * `key.requestsPerSecond`, `key.maxConcurrentSessions`, `project.maxSessionMinutesPerDay`.
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  message: Schema.String,
  limit: Schema.String,
  retryAfterSeconds: Schema.Int,
}, { httpApiStatus: 429 }) {}
