import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/** A token bucket's answer: allowed, or how long until a token is back. */
export type Take = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number }

/**
 * Token buckets in PostgreSQL, keyed by subject (`key:<id>`; a daemon can be `daemon:<id>`):
 * one atomic UPSERT refills by elapsed time and takes a token, so the limit holds across
 * control replicas and restarts. Only subjects that have a limit pay the round trip.
 */
export class LimitCounter extends Context.Service<LimitCounter, {
  readonly take: (subject: string, perSecond: number, burst: number) => Effect.Effect<Take>
}>()("paws/control/LimitCounter") {
  static readonly layer = Layer.effect(
    LimitCounter,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const take = Effect.fnUntraced(function* (subject: string, perSecond: number, burst: number) {
        const refilled = sql`LEAST(${burst}::float8,
          b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at)::float8 * ${perSecond}::float8)`
        const taken = yield* sql<{ tokens: number }>`INSERT INTO rate_buckets AS b (subject, tokens, updated_at)
          VALUES (${subject}, ${burst - 1}::float8, clock_timestamp())
          ON CONFLICT (subject) DO UPDATE SET tokens = ${refilled} - 1, updated_at = clock_timestamp()
          WHERE ${refilled} >= 1
          RETURNING tokens`.pipe(Effect.orDie)
        if (taken.length > 0) return { allowed: true } as const
        const now = yield* sql<{ tokens: number }>`SELECT ${refilled} AS tokens FROM rate_buckets b
          WHERE subject = ${subject}`.pipe(Effect.orDie)
        const missing = 1 - Number(now[0]?.tokens ?? 0)
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(missing / perSecond)) } as const
      })
      return LimitCounter.of({ take })
    }),
  )
}
