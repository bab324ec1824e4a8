import { Effect, Option } from "effect"
import type { ImageStore } from "../image/ImageStore.ts"
import type { SnapshotStore } from "../snapshot/SnapshotStore.ts"

/**
 * Whether a session's source exists on this node: it names an image or a snapshot (one name
 * space; a snapshot may have a base image of another name). Fails with UnknownSnapshot if neither.
 */
export const makeSourceCheck =
  (images: ImageStore["Service"], snapshots: Option.Option<SnapshotStore["Service"]>) => (name: string) =>
    images.get(name).pipe(
      Effect.catchTag(
        "UnknownSnapshot",
        (unknown) =>
          Option.isNone(snapshots) ? Effect.fail(unknown) : snapshots.value.find(name).pipe(
            // A refused snapshot is admitted: the runner fails the session with the reason.
            Effect.map(Option.isSome),
            Effect.orElseSucceed(() => true),
            Effect.flatMap((exists) => exists ? Effect.void : Effect.fail(unknown)),
          ),
      ),
    )
