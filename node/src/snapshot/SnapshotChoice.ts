import { Effect, Option } from "effect"
import type { ImageStore } from "../image/ImageStore.ts"
import type { Snapshot } from "./SnapshotManifest.ts"
import type { SnapshotStore } from "./SnapshotStore.ts"

/**
 * Which snapshot a session restores, if any. Session specs name a snapshot or an image (one name
 * space); a snapshot wins when it fits the session's resources. A snapshot that may not be
 * restored (stale image, other devices) is refused; the session cold-boots the image of the same
 * name if there is one, and fails with the refusal otherwise.
 */
export const chooseSnapshot = (
  store: Option.Option<SnapshotStore["Service"]>,
  images: ImageStore["Service"],
  name: string,
  resources: { readonly vcpus: number; readonly memoryMB: number },
): Effect.Effect<Option.Option<Snapshot>, Error> =>
  Option.match(store, {
    onNone: () => Effect.succeed(Option.none<Snapshot>()),
    onSome: (store) =>
      store.find(name).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(Option.none<Snapshot>()),
          onSome: (s) =>
            s.manifest.memoryMB === resources.memoryMB && s.manifest.vcpus === resources.vcpus
              ? Effect.succeed(Option.some(s))
              : Effect.logInfo(
                `snapshot "${name}" has ${s.manifest.memoryMB} MiB/${s.manifest.vcpus} vCPU, the session asks for ` +
                  `${resources.memoryMB} MiB/${resources.vcpus}: cold boot`,
              ).pipe(Effect.as(Option.none<Snapshot>())),
        })),
        Effect.catchTag("SnapshotMismatch", (refused) =>
          images.get(name).pipe(
            Effect.flatMap(() => Effect.logWarning(`${refused.message}; cold-booting image "${name}" instead`)),
            Effect.as(Option.none<Snapshot>()),
            Effect.catch(() => Effect.fail(new Error(refused.message))),
          )),
      ),
  })
