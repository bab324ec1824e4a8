import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { existsSync, readdirSync } from "node:fs"
import * as path from "node:path"
import { describeError } from "../ApiClient.ts"
import { withProgress } from "../Progress.ts"
import { CliInputError } from "../RunArguments.ts"

/**
 * `paws image build` / `paws image list`: guest images on THIS machine (a node's image dir,
 * PAWS_DATA_DIR or PAWS_IMAGE_DIR), built host-side from Debian and npm packages. An image is a
 * disk; a snapshot (`paws image snapshot`) is a paused VM made from one.
 */
/** Every failure as one readable line on stderr and exit code 1, as the API commands do. */
const reported = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  body.pipe(
    Effect.catch((error) =>
      Console.error(`paws: ${describeError(error)}`).pipe(Effect.andThen(Effect.sync(() => {
        process.exitCode = 1
      })))
    ),
  )

const nameProblem = (name: string) =>
  /^[a-z0-9][a-z0-9._-]{0,63}$/.test(name) ? undefined : `image name "${name}" must be 1-64 characters of a-z 0-9 . _ -`

const build = Command.make("build", {
  from: Flag.String("from").pipe(
    Flag.withDescription("image whose recipe this one extends (debian, node, python, claude-agent or yours)"),
    Flag.optional,
  ),
  apt: Flag.String("apt").pipe(Flag.withDescription("Debian package to install (repeatable)"), Flag.atLeast(0)),
  npm: Flag.String("npm").pipe(
    Flag.withDescription("npm package name@exact-version to install globally (repeatable)"),
    Flag.atLeast(0),
  ),
  file: Flag.String("file").pipe(Flag.withDescription("host file SRC:DEST to copy in (repeatable)"), Flag.atLeast(0)),
  name: Argument.String("name").pipe(Argument.withDescription("image name (sessions and snapshots use it)")),
}, (input) =>
  reported(Effect.gen(function* () {
    const node = yield* Effect.promise(() => import("@paws/node"))
    const problem = nameProblem(input.name)
    if (problem !== undefined) return yield* new CliInputError({ message: problem })
    const builtin = node.builtinRecipes.some((r) => r.name === input.name) ||
      node.minimalImageNames.includes(input.name)
    const custom = input.from._tag === "Some" || input.apt.length + input.npm.length + input.file.length > 0
    if (builtin && custom) {
      return yield* new CliInputError({
        message:
          `"${input.name}" is a catalogue image; give your image its own name to extend it (--from ${input.name})`,
      })
    }
    const files: Array<{ src: string; dest: string }> = []
    for (const f of input.file) {
      const i = f.indexOf(":")
      const src = f.slice(0, i)
      const dest = f.slice(i + 1)
      if (i <= 0 || !dest.startsWith("/") || !existsSync(src)) {
        return yield* new CliInputError({
          message: `--file "${f}" must be SRC:/absolute/dest with SRC an existing file`,
        })
      }
      files.push({ src: path.resolve(src), dest })
    }
    const inexact = input.npm.find((spec) => node.parseNpmSpec(spec) === undefined)
    if (inexact !== undefined) {
      return yield* new CliInputError({ message: `--npm "${inexact}" needs an exact version, e.g. left-pad@1.3.0` })
    }
    const imageDir = yield* node.imageDirConfig
    if (custom) {
      const from = input.from._tag === "Some" ? input.from.value : "debian"
      yield* Effect.promise(() =>
        node.saveRecipe(imageDir, { name: input.name, from, apt: input.apt, npm: input.npm, files })
      )
    }
    const started = Date.now()
    const image = yield* withProgress(
      `image ${input.name}`,
      (onProgress) => node.ImageBuilder.use((b) => b.build(input.name, { onProgress })),
      { initialPhase: "starting" },
    ).pipe(Effect.provide(node.ImageBuilder.layer))
    const m = image.manifest
    yield* Console.error(
      `image ${m.name} ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${m.packages.length} packages, ` +
        `${(m.artefacts.rootfs.bytes / 2 ** 20).toFixed(0)} MiB root; manifest ${
          path.join(image.dir, "manifest.json")
        }`,
    )
  }))).pipe(Command.withDescription(
    "Build a guest image on this machine from Debian (and npm) packages: paws image build NAME [--from IMAGE] " +
      "[--apt PKG]… [--npm PKG@VER]… [--file SRC:DEST]…",
  ))

const list = Command.make("list", {}, () =>
  reported(Effect.gen(function* () {
    const node = yield* Effect.promise(() => import("@paws/node"))
    const imageDir = yield* node.imageDirConfig
    const names = existsSync(imageDir) ? readdirSync(imageDir).filter((n) => !n.startsWith(".")).sort() : []
    const known = new Set([...names, ...node.minimalImageNames.slice(0, 1), ...node.builtinRecipes.map((r) => r.name)])
    for (const name of [...known].sort()) {
      const m = yield* Effect.promise(() => node.readManifest(path.join(imageDir, name)))
      yield* Console.log(
        m === undefined
          ? `${name.padEnd(16)}  not built (paws image build ${name})`
          : `${name.padEnd(16)}  ${String(m.packages.length).padStart(4)} packages  ` +
            `${(m.artefacts.rootfs.bytes / 2 ** 20).toFixed(0).padStart(6)} MiB  built ${m.builtAt}`,
      )
    }
  }))).pipe(Command.withDescription("List the guest images on this machine (built or buildable)"))

export const imageBuildCommands = [build, list] as const
