import { UnknownSnapshot } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { readdir } from "node:fs/promises"
import * as path from "node:path"
import { defaultImageName, imageDirConfig, readManifest, toGuestImage } from "./GuestImage.ts"
import type { GuestImage } from "./GuestImage.ts"

/** Looks up built images by name. An unknown name is `UnknownSnapshot`, never a fallback. */
export class ImageStore extends Context.Service<ImageStore, {
  readonly get: (name?: string) => Effect.Effect<GuestImage, UnknownSnapshot>
  /** Names of the built images (each can be cold-booted by a session naming it). */
  readonly names: Effect.Effect<ReadonlyArray<string>>
  readonly dir: string
}>()("paws/image/ImageStore") {
  static readonly layer = Layer.effect(
    ImageStore,
    Effect.gen(function* () {
      const dir = yield* imageDirConfig
      const get = Effect.fn("ImageStore.get")(function* (name: string = defaultImageName) {
        const unknown = new UnknownSnapshot({
          snapshot: name,
          message: `no guest image named "${name}" in ${dir}; build it with "paws image build ${name}"`,
        })
        if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) return yield* unknown
        const imageDir = path.join(dir, name)
        const manifest = yield* Effect.promise(() => readManifest(imageDir))
        if (manifest === undefined) return yield* unknown
        return toGuestImage(imageDir, manifest)
      })
      const names = Effect.promise(async () => {
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
        const built = await Promise.all(
          entries.filter((e) => e.isDirectory()).map(async (e) =>
            (await readManifest(path.join(dir, e.name))) === undefined ? [] : [e.name]
          ),
        )
        return built.flat().sort()
      })
      return ImageStore.of({ get, names, dir })
    }),
  )
}
