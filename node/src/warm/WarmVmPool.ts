import { Config, Context, Effect, Exit, Layer, Option, Queue, Result, Scope } from "effect"
import { newSessionId } from "@paws/core"
import { Firewall } from "../network/Firewall.ts"
import type { Slot } from "../network/NetworkSlot.ts"
import { NetworkSlot } from "../network/NetworkSlot.ts"
import type { GuestAgent } from "../guest/GuestAgent.ts"
import type { Snapshot } from "../snapshot/SnapshotManifest.ts"
import type { LoadedVm, ResumeTimings } from "../snapshot/SnapshotRestore.ts"
import { SnapshotRestore } from "../snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import type { VmHandle, VmStartError } from "../vmm/Vmm.ts"
import { nodeSettings } from "../NodeConfig.ts"

/**
 * `PAWS_NODE_VM_POOL`: clones of one snapshot kept loaded and paused, each in its own network
 * slot with its firewall table installed in isolated mode (0 = off, the default). Each costs a
 * QEMU process (mostly its RAM mapping of the snapshot file, shared until written) and a /30.
 * `PAWS_NODE_VM_POOL_SNAPSHOT`: which snapshot (default "default").
 */
export const vmPoolConfig = Config.all({
  size: nodeSettings.warmVms.config,
  snapshot: nodeSettings.warmVmSnapshot.config,
})

/** A taken clone, owned by the taker's scope (VM, overlay, run dir, table, TAP, slot go with it). */
export interface PooledVm {
  /** The pooled slot; `slot.sessionId` is the pool id its TAP, table and run dir are named after. */
  readonly slot: Slot
  readonly snapshot: Snapshot
  readonly vm: VmHandle
  readonly agent: GuestAgent
  /** Runs the paused clone and refreshes it for this slot: clock, entropy drawn now, address. Once. */
  readonly resume: Effect.Effect<
    { readonly vm: VmHandle; readonly agent: GuestAgent; readonly timings: ResumeTimings },
    VmStartError
  >
}

interface Entry {
  /** Which build of the snapshot this clone was loaded from. */
  readonly key: string
  readonly scope: Scope.Closeable
  readonly slot: Slot
  readonly snapshot: Snapshot
  readonly loaded: LoadedVm
}

/** A rebuilt snapshot has a new manifest (createdAt, build times): clones of the old one never match. */
const identity = (s: Snapshot): string => `${s.dir}\n${JSON.stringify(s.manifest)}`
const recheckMs = 5_000
const maxRetryMs = 60_000

/**
 * Warm clones: `take` hands out one (removed from the pool first, so never twice) when the
 * request is for the pool's snapshot, its resources equal the snapshot's and the snapshot on disk
 * is still the build the clone came from; otherwise None, and the caller restores as usual. The
 * clone is resumed and refreshed only by the taker (`resume`), so nothing it learns is shared.
 * One background fiber refills after every hand-out (once the clone runs), replaces a clone
 * whose QEMU died while idle, and drops clones of a rebuilt or deleted snapshot. Pooled resources
 * are named after a pool id in the session id format, so the start reconcile removes any a killed
 * node left; the pool's scope tears every idle clone down.
 */
export class WarmVmPool extends Context.Service<WarmVmPool, {
  readonly take: (
    snapshot: string,
    resources: { readonly vcpus: number; readonly memoryMB: number },
  ) => Effect.Effect<Option.Option<PooledVm>, never, Scope.Scope>
  /** Idle clones ready to take. */
  readonly idle: Effect.Effect<number>
  readonly size: number
  readonly snapshot: string
}>()("paws/node/warm/WarmVmPool") {
  static readonly layerNoDeps = Layer.effect(
    WarmVmPool,
    Effect.gen(function* () {
      const { size, snapshot: poolSnapshot } = yield* vmPoolConfig
      const store = yield* SnapshotStore
      const restorer = yield* SnapshotRestore
      const slots = yield* NetworkSlot
      const firewall = yield* Firewall
      const poolScope = yield* Effect.scope
      const idle: Array<Entry> = []
      let closing = false
      const wake = yield* Queue.sliding<void>(1)
      const wakeUp = Effect.sync(() => void Queue.offerUnsafe(wake, undefined))

      // Torn down in the pool's scope, so a shutdown waits for teardowns already under way.
      const drop = (entries: ReadonlyArray<Entry>) =>
        Effect.forEach(entries, (e) => Scope.close(e.scope, Exit.void), { concurrency: "unbounded", discard: true })
          .pipe(Effect.uninterruptible, Effect.forkIn(poolScope), Effect.asVoid)

      const dropStale = (key: string | undefined) =>
        Effect.suspend(() => {
          const stale = idle.filter((e) => e.key !== key)
          if (stale.length === 0) return Effect.void
          for (const e of stale) idle.splice(idle.indexOf(e), 1)
          return Effect.logInfo(`vm pool: dropping ${stale.length} clone(s) of an outdated "${poolSnapshot}"`).pipe(
            Effect.andThen(drop(stale)),
            Effect.andThen(wakeUp),
          )
        })

      /** A clone that dies while idle leaves the pool; one that was taken is its taker's business. */
      const watch = (e: Entry) =>
        e.loaded.vm.exited.pipe(
          Effect.flatMap((code) =>
            Effect.suspend(() => {
              const i = idle.indexOf(e)
              if (i < 0) return Effect.void
              idle.splice(i, 1)
              return Effect.logWarning(`vm pool: clone ${e.slot.sessionId} exited (${code}) while idle: replacing`)
                .pipe(Effect.andThen(Scope.close(e.scope, Exit.void)), Effect.andThen(wakeUp))
            })
          ),
          Effect.forkIn(poolScope),
        )

      const admit = (e: Entry) =>
        closing
          ? Scope.close(e.scope, Exit.void)
          : Effect.sync(() => void idle.push(e)).pipe(Effect.andThen(watch(e)), Effect.asVoid)

      const fill = (snapshot: Snapshot) =>
        Effect.gen(function* () {
          const id = newSessionId()
          const scope = yield* Scope.make()
          const build = Effect.gen(function* () {
            const slot = yield* slots.acquire(id)
            yield* firewall.isolate(slot)
            const loaded = yield* restorer.load(snapshot, { sessionId: id, tap: slot.tap })
            yield* loaded.warm({
              guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
              gateway: slot.hostIp,
              dns: slot.hostIp,
            })
            return { key: identity(snapshot), scope, slot, snapshot, loaded } satisfies Entry
          }).pipe(Scope.provide(scope))
          // Interrupted or failed half way: whatever was made is released; made: admitted at once.
          yield* Effect.uninterruptibleMask((restore) =>
            restore(build).pipe(
              Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
              Effect.flatMap(admit),
            )
          )
        })

      const current = store.find(poolSnapshot).pipe(
        Effect.map(Option.match({
          onNone: () => Result.fail(`no snapshot "${poolSnapshot}"`),
          onSome: (s) => Result.succeed(s),
        })),
        Effect.catchTag("SnapshotMismatch", (e) => Effect.succeed(Result.fail(e.message))),
      )

      const refiller = Effect.gen(function* () {
        let problem = ""
        let retryMs = recheckMs
        for (;;) {
          const snapshot = yield* current
          yield* dropStale(Result.isSuccess(snapshot) ? identity(snapshot.success) : undefined)
          if (Result.isSuccess(snapshot) && idle.length >= size) {
            yield* Queue.take(wake).pipe(Effect.timeoutOption(recheckMs))
            continue
          }
          const filled = Result.isSuccess(snapshot)
            ? yield* fill(snapshot.success).pipe(
              Effect.match({ onFailure: (e) => Result.fail(e.message), onSuccess: () => Result.succeed(true) }),
            )
            : Result.fail(snapshot.failure)
          if (Result.isSuccess(filled)) {
            problem = ""
            retryMs = recheckMs
            continue
          }
          if (filled.failure !== problem) yield* Effect.logWarning(`vm pool: cannot fill: ${filled.failure}`)
          problem = filled.failure
          // A missing snapshot is cheap to look for again; a failing restore backs off.
          yield* Queue.take(wake).pipe(Effect.timeoutOption(Result.isSuccess(snapshot) ? retryMs : recheckMs))
          if (Result.isSuccess(snapshot)) retryMs = Math.min(retryMs * 2, maxRetryMs)
        }
      })

      if (size > 0) {
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() => {
            closing = true
            return Effect.forEach(idle.splice(0), (e) => Scope.close(e.scope, Exit.void), {
              concurrency: "unbounded",
              discard: true,
            })
          })
        )
        yield* Effect.forkScoped(refiller)
      }

      const take = Effect.fn("WarmVmPool.take")(function* (
        snapshotName: string,
        resources: { readonly vcpus: number; readonly memoryMB: number },
      ) {
        if (size === 0 || closing || snapshotName !== poolSnapshot) return Option.none<PooledVm>()
        const found = yield* current
        const key = Result.isSuccess(found) ? identity(found.success) : undefined
        yield* dropStale(key)
        const m = Result.isSuccess(found) ? found.success.manifest : undefined
        if (m === undefined || m.memoryMB !== resources.memoryMB || m.vcpus !== resources.vcpus) {
          return Option.none<PooledVm>()
        }
        // Removed from the pool in one synchronous step: two takers never get the same clone.
        const e = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const i = idle.findIndex((e) => e.key === key && e.loaded.running())
            return i < 0 ? undefined : idle.splice(i, 1)[0]
          }),
          (e, exit) => (e === undefined ? Effect.void : Scope.close(e.scope, exit).pipe(Effect.andThen(wakeUp))),
        )
        if (e === undefined) return yield* wakeUp.pipe(Effect.as(Option.none<PooledVm>()))
        const { slot, loaded } = e
        // The refill starts once this clone runs (or its taker lets it go): loading the next one
        // meanwhile would compete with this resume, the hand-out's critical path.
        const resume = loaded.resume({
          guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
          gateway: slot.hostIp,
          dns: slot.hostIp,
        }).pipe(
          Effect.ensuring(wakeUp),
          Effect.map((timings) => ({ vm: loaded.vm, agent: loaded.agent, timings })),
        )
        return Option.some<PooledVm>({ slot, snapshot: e.snapshot, vm: loaded.vm, agent: loaded.agent, resume })
      })

      return WarmVmPool.of({ take, idle: Effect.sync(() => idle.length), size, snapshot: poolSnapshot })
    }),
  )
}
