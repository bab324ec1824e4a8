import { UnknownSnapshot } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import * as path from "node:path"
import { defaultImageName, imageDirConfig, readManifest, toGuestImage } from "./GuestImage.ts"
import type { GuestImage } from "./GuestImage.ts"

/** Looks up built images by name. An unknown name is `UnknownSnapshot`, never a fallback. */
export class ImageStore extends Context.Service<ImageStore, {
  readonly get: (name?: string) => Effect.Effect<GuestImage, UnknownSnapshot>
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
      return ImageStore.of({ get, dir })
    }),
  )
}
