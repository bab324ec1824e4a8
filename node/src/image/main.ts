/** `npm run image:build [-- NAME]`: build (or confirm the cached) guest image and print its manifest. */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { ImageBuilder } from "./ImageBuilder.ts"

const program = Effect.gen(function* () {
  const builder = yield* ImageBuilder
  const started = Date.now()
  const image = yield* builder.build(process.argv[2])
  yield* Console.log(JSON.stringify({ dir: image.dir, ms: Date.now() - started, manifest: image.manifest }, null, 2))
})

if (import.meta.main) program.pipe(Effect.provide(ImageBuilder.layer), NodeRuntime.runMain)
