import { Schema } from "effect"
import { limitCeilings } from "./Limits.ts"

/** Ceilings past which a daemon's invocation limit is a mistake, not a policy (400 naming the field). */
export const daemonInvocationCeilings = { perHour: 100_000, perDay: 1_000_000 } as const

const bounded = (maximum: number, what: string) =>
  Schema.NullOr(
    Schema.Int.pipe(
      Schema.check(
        Schema.isBetween({ minimum: 0, maximum }, { message: `must be an integer ${what} from 0 to ${maximum}` }),
      ),
    ),
  )

/**
 * Limits of one daemon; a missing or null field means "no limit". Invocations are counted over the
 * last hour / 24 hours (skipped and rate-limited ones not counted); concurrent sessions are its
 * unfinished ones; session-minutes are those its sessions ran this UTC day. 0 refuses all.
 */
export const DaemonLimits = Schema.Struct({
  maxInvocationsPerHour: Schema.optionalKey(bounded(daemonInvocationCeilings.perHour, "of invocations")),
  maxInvocationsPerDay: Schema.optionalKey(bounded(daemonInvocationCeilings.perDay, "of invocations")),
  maxConcurrentSessions: Schema.optionalKey(bounded(limitCeilings.concurrentSessions, "of sessions")),
  maxSessionMinutesPerDay: Schema.optionalKey(bounded(limitCeilings.sessionMinutesPerDay, "of minutes")),
}).annotate({ identifier: "DaemonLimits" })
export type DaemonLimits = typeof DaemonLimits.Type
