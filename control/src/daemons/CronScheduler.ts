import { Context, Cron, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { planTicks, tickKey } from "./CronTicks.ts"
import { DaemonConfig } from "./DaemonConfig.ts"
import { DaemonInvoker } from "./DaemonInvoker.ts"
import { DaemonStore, type StoredDaemon } from "./DaemonStore.ts"
import { leaseLoop } from "./LeaseLoop.ts"

type CronTrigger = Extract<StoredDaemon["view"]["triggers"][number], { kind: "cron" }>

/**
 * Fires cron triggers. Only the replica holding the `cron` lease checks; each tick is claimed by
 * a compare-and-set of the trigger's last tick (noted `fire:N` or `skip`) before it fires, and
 * fired under an idempotency key made from the tick, so: two replicas never fire one tick twice,
 * and a replica that dies between claim and fire leaves a `fire:` note that the next pass (on any
 * replica) completes — a restart neither loses nor doubles a tick. A new trigger starts from now.
 */
export class CronScheduler extends Context.Service<CronScheduler, {
  /** One pass over every enabled daemon's cron triggers (what the loop runs). */
  readonly pass: Effect.Effect<void>
}>()("paws/control/CronScheduler") {
  static readonly layer = Layer.effect(
    CronScheduler,
    Effect.gen(function* () {
      const config = yield* DaemonConfig
      const store = yield* DaemonStore
      const invoker = yield* DaemonInvoker
      const holder = randomUUID()
      const graceMs = Math.max(config.leaseMs, 2 * config.cronPollMs)

      const fire = (daemon: StoredDaemon, trigger: CronTrigger, tick: Date, covered: number) =>
        invoker.invoke(daemon, { kind: "cron", name: trigger.name }, {
          kind: "cron",
          trigger: trigger.name,
          tick: tick.toISOString(),
          coveredTicks: covered,
        }, { idempotencyKey: tickKey(trigger.name, tick) }).pipe(
          Effect.andThen(store.tickFired(daemon.view.name, trigger.name, tick)),
          Effect.catchTags({
            // The daemon no longer fits the limits (they changed) or no node holds its snapshot: the tick is spent, say why.
            InvalidRequest: (e) =>
              Effect.logWarning("cron tick not run: invalid daemon").pipe(
                Effect.annotateLogs({ daemon: daemon.view.name, trigger: trigger.name, problem: e.message }),
                Effect.andThen(store.tickFired(daemon.view.name, trigger.name, tick)),
              ),
            SnapshotUnavailable: (e) =>
              Effect.logWarning("cron tick not run: no node can run it").pipe(
                Effect.annotateLogs({ daemon: daemon.view.name, trigger: trigger.name, problem: e.message }),
                Effect.andThen(store.tickFired(daemon.view.name, trigger.name, tick)),
              ),
            RateLimited: (e) =>
              Effect.logWarning("cron tick not run: over a limit").pipe(
                Effect.annotateLogs({ daemon: daemon.view.name, trigger: trigger.name, limit: e.limit }),
                Effect.andThen(store.tickFired(daemon.view.name, trigger.name, tick)),
              ),
          }),
        )

      const check = (daemon: StoredDaemon, trigger: CronTrigger, now: Date) =>
        Effect.gen(function* () {
          const name = daemon.view.name
          const state = yield* store.triggerState(name, trigger.name)
          if (state === undefined || state.lastTick === null) {
            yield* store.advanceTick(name, trigger.name, null, now, "start")
            return
          }
          // Claimed by a replica that died before it fired: fire it now (the key makes it once).
          const note = state.lastValue ?? ""
          if (note.startsWith("fire:")) yield* fire(daemon, trigger, state.lastTick, Number(note.slice(5)))
          const cron = Cron.parseUnsafe(trigger.schedule, trigger.timeZone ?? "UTC")
          const plan = planTicks(cron, state.lastTick, now, trigger.missed ?? "skip", graceMs)
          if (plan === undefined) return
          const claimed = yield* store.advanceTick(
            name,
            trigger.name,
            state.lastTick,
            plan.advanceTo,
            plan.fire ? `fire:${plan.covered}` : "skip",
          )
          if (claimed && plan.fire) yield* fire(daemon, trigger, plan.advanceTo, plan.covered)
        })

      const pass = Effect.gen(function* () {
        const now = new Date()
        for (const daemon of yield* store.list) {
          if (!daemon.view.enabled) continue
          for (const trigger of daemon.view.triggers) {
            if (trigger.kind === "cron") yield* check(daemon, trigger, now)
          }
        }
      })

      yield* leaseLoop("cron", holder, { everyMs: config.cronPollMs, leaseMs: config.leaseMs }, pass)
      return CronScheduler.of({ pass })
    }),
  )
}
