import { Context, Effect, Layer } from "effect"
import { createHash, randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { DaemonConfig } from "./DaemonConfig.ts"
import { DaemonInvoker } from "./DaemonInvoker.ts"
import { DaemonStore, type StoredDaemon } from "./DaemonStore.ts"
import { leaseLoop } from "./LeaseLoop.ts"
import { fetchWatched } from "./WatchFetch.ts"

type WatchTrigger = Extract<StoredDaemon["view"]["triggers"][number], { kind: "watch" }>

/** Values larger than this are not put in event.json (its hash still decides whether it changed). */
const maxEventValueBytes = 64 * 1024

/**
 * Polls watch triggers on the replica holding the `watch` lease: every `intervalSeconds`, GET the
 * URL (through the proxy's address policy) and fire when the JSON pointer's value (or the ETag, or
 * the body) differs from the last one seen. The first poll only records a baseline. The stored
 * value is a hash, swapped by compare-and-set: a change fires once, even if replicas overlap.
 */
export class WatchPoller extends Context.Service<WatchPoller, {
  /** One pass: polls the watches that are due. */
  readonly pass: Effect.Effect<void>
}>()("paws/control/WatchPoller") {
  static readonly layer = Layer.effect(
    WatchPoller,
    Effect.gen(function* () {
      const config = yield* DaemonConfig
      const store = yield* DaemonStore
      const invoker = yield* DaemonInvoker
      const ca = config.watchCaFile === undefined ? undefined : readFileSync(config.watchCaFile, "utf8")
      const due = new Map<string, number>()

      const poll = (daemon: StoredDaemon, trigger: WatchTrigger) =>
        Effect.gen(function* () {
          const name = daemon.view.name
          const seen = yield* Effect.tryPromise(() =>
            fetchWatched(trigger.url, trigger.pointer, {
              allowLoopback: config.watchAllowLoopback,
              ca,
              maxBytes: 1024 * 1024,
              timeoutMs: 10_000,
            })
          )
          const text = JSON.stringify(seen.value)
          const hash = createHash("sha256").update(text).digest("hex")
          const before = yield* store.triggerState(name, trigger.name)
          const changed = yield* store.changeValue(name, trigger.name, hash)
          if (!changed || before === undefined || before.lastValue === null) return // baseline, or no change
          yield* invoker.invoke(daemon, { kind: "watch", name: trigger.name }, {
            kind: "watch",
            trigger: trigger.name,
            url: trigger.url,
            ...(trigger.pointer === undefined ? {} : { pointer: trigger.pointer }),
            etag: seen.etag ?? null,
            ...(Buffer.byteLength(text) <= maxEventValueBytes ? { value: seen.value } : { valueTooLarge: true }),
            observedAt: new Date().toISOString(),
          })
        }).pipe(
          Effect.catch((e) =>
            Effect.logWarning("watch poll failed").pipe(
              Effect.annotateLogs({ daemon: daemon.view.name, trigger: trigger.name, error: String(e) }),
            )
          ),
        )

      const pass = Effect.gen(function* () {
        const now = Date.now()
        for (const daemon of yield* store.list) {
          if (!daemon.view.enabled) continue
          for (const trigger of daemon.view.triggers) {
            if (trigger.kind !== "watch") continue
            const key = `${daemon.view.name}/${trigger.name}`
            if ((due.get(key) ?? 0) > now) continue
            due.set(key, now + trigger.intervalSeconds * 1000)
            yield* poll(daemon, trigger)
          }
        }
      })

      yield* leaseLoop("watch", randomUUID(), { everyMs: 500, leaseMs: config.leaseMs }, pass)
      return WatchPoller.of({ pass })
    }),
  )
}
