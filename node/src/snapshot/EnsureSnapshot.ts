import { Effect, Option, Stream } from "effect"
import { ImageStore } from "../image/ImageStore.ts"
import type { SnapshotManifest } from "./SnapshotManifest.ts"
import { NodeSnapshots } from "./NodeSnapshots.ts"
import { SnapshotStore } from "./SnapshotStore.ts"

/**
 * Builds snapshot `name` of the image of the same name unless a restorable one exists, through
 * NodeSnapshots (so the build shows in ListSnapshots while it runs). No setup script, so the
 * source VM's guest stays fully isolated.
 */
export const ensureSnapshot = (
  name: string,
  options: { readonly memoryMB?: number; readonly onProgress?: (phase: string, ms: number) => void } = {},
): Effect.Effect<Option.Option<SnapshotManifest>, Error, SnapshotStore | NodeSnapshots | ImageStore> =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const memoryMB = options.memoryMB ?? 256
    const current = yield* store.find(name).pipe(
      Effect.catchTag(
        "SnapshotMismatch",
        (e) => Effect.logWarning(`${e.message}: rebuilding`).pipe(Effect.as(Option.none())),
      ),
    )
    if (Option.isSome(current) && current.value.manifest.memoryMB === memoryMB) return Option.none()
    if (Option.isNone(yield* Effect.option((yield* ImageStore).get(name)))) return Option.none()
    yield* (yield* NodeSnapshots).build({
      name,
      base: name,
      network: { allowOut: [], credentials: {} },
      memoryMB,
      vcpus: 1,
      timeoutMs: 30 * 60_000,
    }).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => {
          if (e._tag === "progress") options.onProgress?.(e.phase, e.ms)
        })
      ),
      Effect.mapError((e) => new Error(e.message)),
    )
    return Option.map(yield* Effect.orDie(store.find(name)), (s) => s.manifest)
  })
