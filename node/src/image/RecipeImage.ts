import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { withDirLock } from "./DirLock.ts"
import { ImageBuildError, publicKeyBlob, sshFingerprint, toGuestImage } from "./GuestImage.ts"
import type { GuestImage, GuestImageManifest } from "./GuestImage.ts"
import { runHostCommand } from "../HostCommand.ts"
import type { ImageRecipe } from "./ImageCatalogue.ts"
import { readCached, sha256File } from "./ImageFiles.ts"
import { parseNpmSpec, stageNpmPackages } from "./NpmPackages.ts"

const buildScript = fileURLToPath(new URL("./build-debian.sh", import.meta.url))

/**
 * Builds a Debian-rootfs image from its recipe (build-debian.sh) on top of the minimal image's
 * boot chain (`boot`). Same recipe, script, boot image and client key → the cached build.
 */
export const buildRecipeImage = (args: {
  readonly imageDir: string
  readonly recipe: ImageRecipe
  readonly boot: GuestImage
  readonly clientKey: string
  readonly progress: (phase: string) => Effect.Effect<void>
}) =>
  Effect.gen(function* () {
    const { imageDir, recipe, boot, progress } = args
    const script = yield* Effect.promise(() => fs.readFile(buildScript, "utf8"))
    const fileHashes = yield* Effect.promise(() =>
      Promise.all(recipe.files.map(async (f) => `${f.src}:${f.dest}:${await sha256File(f.src)}`))
    ).pipe(Effect.catchDefect((e) => new ImageBuildError({ message: `--file source unreadable: ${String(e)}` })))
    const inputHash = createHash("sha256").update(JSON.stringify({
      format: 1,
      recipe: { ...recipe, files: fileHashes },
      script,
      boot: boot.manifest.inputHash,
      key: args.clientKey,
    })).digest("hex")
    const finalDir = path.join(imageDir, recipe.name)
    const cached = yield* readCached(finalDir, inputHash)
    if (cached) return cached
    yield* progress("waiting for other builds of this image")
    return yield* withDirLock(
      path.join(imageDir, `.lock-${recipe.name}`),
      Effect.gen(function* () {
        const again = yield* readCached(finalDir, inputHash)
        if (again) return again
        yield* progress(`fetching ${recipe.npm.length} npm packages (cached after the first build)`)
        const tarballs = yield* stageNpmPackages(path.join(imageDir, ".cache", "npm"), recipe.npm)
        const tmp = path.join(imageDir, `.build-${recipe.name}-${randomBytes(4).toString("hex")}`)
        const out = path.join(tmp, "out")
        return yield* Effect.acquireUseRelease(
          Effect.promise(async () => {
            await fs.mkdir(path.join(tmp, "work"), { recursive: true })
            await fs.mkdir(out)
            await fs.writeFile(path.join(tmp, "client.pub"), `${args.clientKey}\n`)
          }),
          () =>
            Effect.gen(function* () {
              yield* progress(
                `installing ${recipe.apt.length} Debian packages and their dependencies (mmdebstrap; .debs cached)`,
              )
              yield* runHostCommand("bash", [buildScript], {
                env: {
                  NODE: process.execPath,
                  BOOT: boot.dir,
                  PACKAGES: recipe.apt.join(" "),
                  NPM_TGZ: tarballs.join(" "),
                  FILES: recipe.files.map((f) => `${path.resolve(f.src)}:${f.dest}`).join("\n"),
                  DEB_CACHE: path.join(imageDir, ".cache", "debian-debs"),
                  OUT: out,
                  WORK: path.join(tmp, "work"),
                  CLIENT_PUBKEY: path.join(tmp, "client.pub"),
                  LC_ALL: "C",
                },
              }).pipe(
                Effect.mapError((e) => new ImageBuildError({ message: e.message, cause: e })),
                // one Debian build at a time per image dir: they share (and refill) the .deb cache
                (run) => withDirLock(path.join(imageDir, ".lock-debian-debs"), run),
              )
              yield* progress("hashing the artefacts, writing the manifest")
              const manifest = yield* Effect.promise(() => writeManifest(out, recipe, inputHash, boot, args.clientKey))
              yield* Effect.promise(async () => {
                const old = path.join(imageDir, `.old-${recipe.name}-${randomBytes(4).toString("hex")}`)
                await fs.rename(finalDir, old).catch(() => undefined)
                await fs.rename(out, finalDir)
                await fs.rm(old, { recursive: true, force: true })
              })
              return toGuestImage(finalDir, manifest)
            }),
          () => Effect.promise(() => fs.rm(tmp, { recursive: true, force: true })),
        )
      }),
    )
  })

const writeManifest = async (
  out: string,
  recipe: ImageRecipe,
  inputHash: string,
  boot: GuestImage,
  clientKey: string,
): Promise<GuestImageManifest> => {
  const artefact = async (file: string) => {
    const p = path.join(out, file)
    return { file, sha256: await sha256File(p), bytes: (await fs.stat(p)).size }
  }
  const debs = (await fs.readFile(path.join(out, "packages.txt"), "utf8")).trim().split("\n").map((l) => {
    const [name = "", version = ""] = l.split(" ")
    return { name, version }
  })
  const npm = recipe.npm.flatMap((s) => {
    const p = parseNpmSpec(s)
    return p ? [{ name: `npm:${p.name}`, version: p.version }] : []
  })
  const hostKey = (await fs.readFile(path.join(out, "host_key.pub"), "utf8")).trim()
  const manifest: GuestImageManifest = {
    format: 1,
    name: recipe.name,
    inputHash,
    builtAt: new Date().toISOString(),
    kernelVersion: boot.manifest.kernelVersion,
    // every Debian package dpkg installed, the kernel the boot chain came from, the npm packages
    packages: [
      ...debs,
      ...boot.manifest.packages.filter((p) => p.name.startsWith("linux-image-")),
      ...npm,
    ],
    artefacts: {
      kernel: await artefact(boot.manifest.artefacts.kernel.file),
      rootfs: await artefact("rootfs.ext4"),
      initrd: await artefact(boot.manifest.artefacts.initrd.file),
    },
    hostKey: { publicKey: hostKey, fingerprint: sshFingerprint(publicKeyBlob(hostKey)) },
    clientPublicKey: clientKey,
  }
  await fs.writeFile(path.join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}
