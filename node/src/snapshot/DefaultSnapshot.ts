import { Config, Effect, Layer, Option } from "effect"
import { newSessionId } from "@paws/core"
import { ImageStore } from "../image/ImageStore.ts"
import { Firewall } from "../network/Firewall.ts"
import { NetworkSlot } from "../network/NetworkSlot.ts"
import { SnapshotBuilder } from "./SnapshotBuilder.ts"
import type { SnapshotManifest } from "./SnapshotManifest.ts"
import { SnapshotStore } from "./SnapshotStore.ts"

/**
 * Builds snapshot `name` of the image of the same name unless a restorable one exists. The source
 * VM gets a real network slot with the guest fully isolated (no setup script, so no network).
 */
export const ensureSnapshot = (
  name: string,
  options: { readonly memoryMB?: number; readonly onProgress?: (phase: string, ms: number) => void } = {},
): Effect.Effect<
  Option.Option<SnapshotManifest>,
  Error,
  SnapshotStore | SnapshotBuilder | NetworkSlot | Firewall | ImageStore
> =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const current = yield* store.find(name).pipe(
      Effect.catchTag("SnapshotMismatch", (e) =>
        Effect.logWarning(`${e.message}: rebuilding`).pipe(Effect.as(Option.none()))),
    )
    if (Option.isSome(current) && current.value.manifest.memoryMB === (options.memoryMB ?? 256)) {
      return Option.none()
    }
    if (Option.isNone(yield* Effect.option((yield* ImageStore).get(name)))) {
      return Option.none()
    }
    return yield* Effect.scoped(Effect.gen(function* () {
      const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
      yield* (yield* Firewall).isolate(slot)
      const manifest = yield* (yield* SnapshotBuilder).build({
        name,
        ...(options.memoryMB === undefined ? {} : { memoryMB: options.memoryMB }),
        net: {
          tap: slot.tap,
          guestMac: slot.guestMac,
          guestIp: slot.guestIp,
          guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
          gateway: slot.hostIp,
          dns: slot.hostIp,
        },
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      })
      return Option.some(manifest)
    })).pipe(Effect.mapError((e) =>
      new Error(e.message)
    ))
  })

/**
 * `PAWS_NODE_DEFAULT_SNAPSHOT=1`: at node start, build the default snapshot in the background when
 * it is missing or stale (sessions cold-boot until it is ready). Off by default for now: test nodes
 * share one data dir, and a background build would change every other test's sessions.
 */
export const DefaultSnapshotOnStart = Layer.effectDiscard(Effect.gen(function* () {
  const enabled = yield* Config.Boolean("PAWS_NODE_DEFAULT_SNAPSHOT").pipe(Config.withDefault(false))
  if (!enabled) return
  yield* ensureSnapshot("default").pipe(
    Effect.tap(Option.match({
      onNone: () => Effect.logInfo(`default snapshot is current`),
      onSome: (m) => Effect.logInfo(`default snapshot built in ${m.buildMs["total"]} ms`),
    })),
    Effect.catch((e) => Effect.logWarning(`default snapshot not built: ${e.message}`)),
    Effect.forkScoped,
  )
}))
