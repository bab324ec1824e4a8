import { Cron } from "effect"

/** What one check of a cron trigger does: move its last tick to `advanceTo`, and fire for it or not. */
export interface TickPlan {
  readonly advanceTo: Date
  readonly fire: boolean
  /** How many ticks this one invocation stands for (more than 1: missed ticks run `once`). */
  readonly covered: number
}

const maxCounted = 100_000

/**
 * The ticks of `cron` after `lastTick` up to `now`. None: nothing to do. One: fire it. Several
 * (control was down, or no replica held the lease): `once` fires one invocation for all of them;
 * `skip` fires only the latest, and only if it is within `graceMs` of now (it is then on time).
 */
export const planTicks = (
  cron: Cron.Cron,
  lastTick: Date,
  now: Date,
  missed: "skip" | "once",
  graceMs: number,
): TickPlan | undefined => {
  let count = 0
  let latest: Date | undefined
  for (const tick of Cron.sequence(cron, lastTick)) {
    if (tick.getTime() > now.getTime() || count >= maxCounted) break
    if (tick.getTime() <= lastTick.getTime()) continue
    latest = tick
    count++
  }
  if (latest === undefined) return undefined
  if (count === 1) return { advanceTo: latest, fire: true, covered: 1 }
  if (missed === "once") return { advanceTo: latest, fire: true, covered: count }
  return { advanceTo: latest, fire: now.getTime() - latest.getTime() <= graceMs, covered: 1 }
}

/** The idempotency key of a tick's invocation: whichever replica fires it, there is one session. */
export const tickKey = (trigger: string, tick: Date) => `cron:${trigger}:${tick.toISOString()}`
