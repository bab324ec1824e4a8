import { Context, Effect, Layer } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { NodeSshKey } from "../guest/NodeSshKey.ts"
import {
  artefactFiles,
  defaultImageName,
  ImageBuildError,
  imageDirConfig,
  publicKeyBlob,
  sshFingerprint,
  toGuestImage,
} from "./GuestImage.ts"
import type { GuestImage, GuestImageManifest, ImageArtefact } from "./GuestImage.ts"
import { runHostCommand } from "../HostCommand.ts"
import { readCached, sha256File } from "./ImageFiles.ts"
import { downloadDebs, resolvePackagesCached } from "./DebianPackages.ts"
import type { Pkg } from "./DebianPackages.ts"
import { withDirLock } from "./DirLock.ts"
import { resolveRecipe } from "./ImageCatalogue.ts"
import { buildRecipeImage } from "./RecipeImage.ts"

const buildScript = fileURLToPath(new URL("./build-guest.sh", import.meta.url))
const manifestFormat = 1

/** Called with each phase a build enters (a short human-readable label), e.g. for a CLI progress line. */
export type ImageBuildProgress = (phase: string) => void

export class ImageBuilder extends Context.Service<ImageBuilder, {
  /** Builds (or returns the cached build of) the named image; same inputs → no work. */
  readonly build: (
    name?: string,
    options?: { readonly onProgress?: ImageBuildProgress },
  ) => Effect.Effect<GuestImage, ImageBuildError>
}>()("paws/image/ImageBuilder") {
  static readonly layerNoDeps = Layer.effect(
    ImageBuilder,
    Effect.gen(function* () {
      const imageDir = yield* imageDirConfig
      const clientKey = yield* NodeSshKey
      const debCache = path.join(imageDir, ".cache", "debs")

      const build: (
        name?: string,
        options?: { readonly onProgress?: ImageBuildProgress },
      ) => Effect.Effect<GuestImage, ImageBuildError> = Effect.fn("ImageBuilder.build")(
        function* (name: string = defaultImageName, options: { readonly onProgress?: ImageBuildProgress } = {}) {
          if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) {
            return yield* new ImageBuildError({ message: `invalid image name "${name}"` })
          }
          const progress = (phase: string) => Effect.sync(() => options.onProgress?.(phase))
          // catalogue images (debian, node, …) are Debian roots on the minimal image's boot chain
          const recipe = yield* Effect.tryPromise(() => resolveRecipe(imageDir, name))
          if (recipe !== undefined) {
            const boot: GuestImage = yield* build(defaultImageName, options)
            return yield* buildRecipeImage({ imageDir, recipe, boot, clientKey: clientKey.publicKey, progress })
          }
          yield* progress("resolving package versions")
          const packages = yield* resolvePackagesCached(path.join(imageDir, ".cache", "resolved.json"))
          const script = yield* Effect.promise(() => fs.readFile(buildScript, "utf8"))
          const inputHash = sha256Hex(JSON.stringify({ manifestFormat, packages, script, key: clientKey.publicKey }))
          const finalDir = path.join(imageDir, name)
          const cached = yield* readCached(finalDir, inputHash)
          if (cached) return cached
          yield* progress("waiting for other builds of this image")
          return yield* withDirLock(
            path.join(imageDir, `.lock-${name}`),
            Effect.gen(function* () {
              const again = yield* readCached(finalDir, inputHash)
              if (again) return again
              yield* Effect.logInfo(`building guest image "${name}" (${inputHash.slice(0, 12)})`)
              yield* progress(`fetching ${packages.length} Debian packages (cached after the first build)`)
              const debs = yield* downloadDebs(debCache, packages)
              return yield* assemble({
                progress,
                imageDir,
                name,
                finalDir,
                inputHash,
                packages,
                debs,
                clientKey: clientKey.publicKey,
              })
            }),
          )
        },
        Effect.mapError((e) =>
          e instanceof ImageBuildError ? e : new ImageBuildError({ message: String(e), cause: e })
        ),
      )

      return ImageBuilder.of({ build })
    }),
  )
  static readonly layer = ImageBuilder.layerNoDeps.pipe(Layer.provide(NodeSshKey.layer))
}

/**
 * The build script's phases, read off the files it has written so far (latest first): the script
 * stays silent because its text is part of the image's input hash.
 */
const scriptPhases: ReadonlyArray<readonly [file: string, phase: string]> = [
  ["out/initramfs-boot.cpio.gz", "packing the initramfs"],
  ["out/rootfs.ext4", "writing the ext4 root filesystem"],
  ["out/host_key.pub", "configuring the guest (host key, kernel modules, init)"],
  ["work/rootfs/bin", "assembling the root filesystem (binaries, shared libraries, CA bundle)"],
  ["out/kernel.version", "unpacking the kernel"],
]

/** Reports the script's phase as it changes until interrupted (polls: the phases last seconds). */
const watchScript = (tmp: string, progress: (phase: string) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    let current = "unpacking the packages"
    yield* progress(current)
    while (true) {
      yield* Effect.sleep(200)
      const phase = yield* Effect.promise(async () => {
        for (const [file, phase] of scriptPhases) if (await exists(path.join(tmp, file))) return phase
        return current
      })
      if (phase !== current) yield* progress(current = phase)
    }
  })

const assemble = Effect.fn("ImageBuilder.assemble")(function* (args: {
  readonly progress: (phase: string) => Effect.Effect<void>
  readonly imageDir: string
  readonly name: string
  readonly finalDir: string
  readonly inputHash: string
  readonly packages: ReadonlyArray<Pkg>
  readonly debs: ReadonlyArray<string>
  readonly clientKey: string
}) {
  const tmp = path.join(args.imageDir, `.build-${args.name}-${randomBytes(4).toString("hex")}`)
  const out = path.join(tmp, "out")
  return yield* Effect.acquireUseRelease(
    Effect.promise(async () => {
      await fs.mkdir(path.join(tmp, "debs"), { recursive: true })
      await fs.mkdir(path.join(tmp, "work"))
      await fs.mkdir(out)
      for (const deb of args.debs) await fs.symlink(deb, path.join(tmp, "debs", path.basename(deb)))
      await fs.writeFile(path.join(tmp, "client.pub"), `${args.clientKey}\n`)
    }),
    () =>
      Effect.gen(function* () {
        yield* runHostCommand("bash", [buildScript], {
          env: {
            DEBS: path.join(tmp, "debs"),
            OUT: out,
            WORK: path.join(tmp, "work"),
            CLIENT_PUBKEY: path.join(tmp, "client.pub"),
            LC_ALL: "C",
          },
        }).pipe(Effect.raceFirst(watchScript(tmp, args.progress)))
        yield* args.progress("hashing the artefacts, writing the manifest")
        const manifest = yield* Effect.promise(() => writeManifest(out, args))
        yield* Effect.promise(async () => {
          const old = path.join(args.imageDir, `.old-${args.name}-${randomBytes(4).toString("hex")}`)
          await fs.rename(args.finalDir, old).catch(() => undefined)
          await fs.rename(out, args.finalDir)
          await fs.rm(old, { recursive: true, force: true })
        })
        return toGuestImage(args.finalDir, manifest)
      }),
    () => Effect.promise(() => fs.rm(tmp, { recursive: true, force: true })),
  )
})

const writeManifest = async (out: string, args: {
  readonly name: string
  readonly inputHash: string
  readonly packages: ReadonlyArray<Pkg>
  readonly clientKey: string
}): Promise<GuestImageManifest> => {
  const artefact = async (file: string): Promise<typeof ImageArtefact.Type> => {
    const p = path.join(out, file)
    return { file, sha256: await sha256File(p), bytes: (await fs.stat(p)).size }
  }
  const hostKey = (await fs.readFile(path.join(out, "host_key.pub"), "utf8")).trim()
  const elfKernel = await exists(path.join(out, "vmlinux"))
  if (elfKernel) await fs.rm(path.join(out, artefactFiles.kernel)) // only what the manifest pins stays
  const manifest: GuestImageManifest = {
    format: manifestFormat,
    name: args.name,
    inputHash: args.inputHash,
    builtAt: new Date().toISOString(),
    kernelVersion: (await fs.readFile(path.join(out, "kernel.version"), "utf8")).trim(),
    packages: args.packages,
    artefacts: {
      // the unpacked ELF boots ~2 s faster under TCG (PVH entry); the bzImage is the fallback
      kernel: await artefact(elfKernel ? "vmlinux" : artefactFiles.kernel),
      rootfs: await artefact(artefactFiles.rootfs),
      initrd: await artefact(artefactFiles.initrd),
    },
    hostKey: { publicKey: hostKey, fingerprint: sshFingerprint(publicKeyBlob(hostKey)) },
    clientPublicKey: args.clientKey,
  }
  await fs.writeFile(path.join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}

const exists = (p: string) => fs.access(p).then(() => true, () => false)

const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex")
