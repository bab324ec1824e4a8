import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { UnknownSnapshot } from "@paws/core"
import type { GuestImage } from "../src/image/GuestImage.ts"
import type { ImageStore } from "../src/image/ImageStore.ts"
import { chooseSnapshot } from "../src/snapshot/SnapshotChoice.ts"
import { SnapshotMismatch } from "../src/snapshot/SnapshotManifest.ts"
import type { Snapshot, SnapshotManifest } from "../src/snapshot/SnapshotManifest.ts"
import type { SnapshotStore } from "../src/snapshot/SnapshotStore.ts"

const snapshot = { name: "s", manifest: { memoryMB: 256, vcpus: 1 } as SnapshotManifest } as Snapshot
const store = (found: Record<string, Snapshot | "stale">): SnapshotStore["Service"] => ({
  dir: "/nowhere",
  list: Effect.succeed([]),
  remove: () => Effect.succeed(false),
  find: (name) => {
    const f = found[name]
    if (f === "stale") return Effect.fail(new SnapshotMismatch({ snapshot: name, reason: "image rebuilt" }))
    return Effect.succeed(Option.fromUndefinedOr(f))
  },
})
const images = (names: ReadonlyArray<string>): ImageStore["Service"] => ({
  dir: "/nowhere",
  names: Effect.succeed(names),
  get: (name = "default") =>
    names.includes(name)
      ? Effect.succeed({ name } as GuestImage)
      : Effect.fail(new UnknownSnapshot({ snapshot: name, message: "no image" })),
})
const small = { vcpus: 1, memoryMB: 256 }

describe("which snapshot a session restores", () => {
  it.effect("the named snapshot when it fits; nothing without snapshot services or of another size", () =>
    Effect.gen(function* () {
      const s = Option.some(store({ default: snapshot }))
      assert.isTrue(Option.isSome(yield* chooseSnapshot(s, images(["default"]), "default", small)))
      assert.isTrue(Option.isNone(yield* chooseSnapshot(Option.none(), images(["default"]), "default", small)))
      assert.isTrue(Option.isNone(yield* chooseSnapshot(s, images([]), "default", { vcpus: 1, memoryMB: 512 })))
      assert.isTrue(Option.isNone(yield* chooseSnapshot(s, images(["other"]), "other", small)))
    }))

  it.effect("a refused snapshot falls back to the image of that name, or fails with the refusal", () =>
    Effect.gen(function* () {
      const s = Option.some(store({ default: "stale", custom: "stale" }))
      assert.isTrue(Option.isNone(yield* chooseSnapshot(s, images(["default"]), "default", small)))
      const refused = yield* Effect.flip(chooseSnapshot(s, images(["default"]), "custom", small))
      assert.match(refused.message, /snapshot "custom" cannot be restored: image rebuilt/)
    }))
})
