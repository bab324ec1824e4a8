import { Context, Data, Effect, Layer, Schema } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { NodeSshKey } from "../guest/NodeSshKey.ts"
import {
  artefactFiles,
  defaultImageName,
  GuestImageManifest,
  imageDirConfig,
  publicKeyBlob,
  toGuestImage,
} from "./GuestImage.ts"
import type { GuestImage, ImageArtefact } from "./GuestImage.ts"
import { HostCommandError, runHostCommand } from "./HostCommand.ts"
import { withDirLock } from "./DirLock.ts"

/** Guest packages (no recommends); the libraries are what `ld.so --list` needs, checked by the script. */
export const guestPackages = [
  "busybox-static",
  "dropbear-bin",
  "openssh-sftp-server",
  "curl",
  "git",
  "ca-certificates",
  "libc6",
  "libgcc-s1",
  "libcrypt1",
  "libtomcrypt1",
  "libtommath1",
  "zlib1g",
  "libgmp10",
  "libcurl4",
  "libcurl3-gnutls",
  "libbrotli1",
  "libidn2-0",
  "libunistring2",
  "libldap-2.5-0",
  "libsasl2-2",
  "libnghttp2-14",
  "libpsl5",
  "librtmp1",
  "libssh2-1",
  "libssl3",
  "libzstd1",
  "libgssapi-krb5-2",
  "libk5crypto3",
  "libkrb5-3",
  "libkrb5support0",
  "libkeyutils1",
  "libcom-err2",
  "libgnutls30",
  "libhogweed6",
  "libnettle8",
  "libp11-kit0",
  "libffi8",
  "libtasn1-6",
  "libexpat1",
  "libpcre2-8-0",
] as const
export const kernelMetaPackage = "linux-image-cloud-amd64"
const buildScript = fileURLToPath(new URL("./build-guest.sh", import.meta.url))
const manifestFormat = 1

export class ImageBuildError extends Data.TaggedError("ImageBuildError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export class ImageBuilder extends Context.Service<ImageBuilder, {
  /** Builds (or returns the cached build of) the named image; same inputs → no work. */
  readonly build: (name?: string) => Effect.Effect<GuestImage, ImageBuildError>
}>()("paws/image/ImageBuilder") {
  static readonly layerNoDeps = Layer.effect(
    ImageBuilder,
    Effect.gen(function* () {
      const imageDir = yield* imageDirConfig
      const clientKey = yield* NodeSshKey
      const debCache = path.join(imageDir, ".cache", "debs")

      const build = Effect.fn("ImageBuilder.build")(
        function* (name: string = defaultImageName) {
          if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) {
            return yield* new ImageBuildError({ message: `invalid image name "${name}"` })
          }
          const packages = yield* resolvePackagesCached(path.join(imageDir, ".cache", "resolved.json"))
          const script = yield* Effect.promise(() => fs.readFile(buildScript, "utf8"))
          const inputHash = sha256Hex(JSON.stringify({ manifestFormat, packages, script, key: clientKey.publicKey }))
          const finalDir = path.join(imageDir, name)
          const cached = yield* readCached(finalDir, inputHash)
          if (cached) return cached
          return yield* withDirLock(
            path.join(imageDir, `.lock-${name}`),
            Effect.gen(function* () {
              const again = yield* readCached(finalDir, inputHash)
              if (again) return again
              yield* Effect.logInfo(`building guest image "${name}" (${inputHash.slice(0, 12)})`)
              const debs = yield* downloadDebs(debCache, packages)
              return yield* assemble({
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

interface Pkg {
  readonly name: string
  readonly version: string
}

/** Candidate versions from the local apt lists (CI runs `apt-get update` first). */
const resolvePackages: Effect.Effect<ReadonlyArray<Pkg>, HostCommandError | ImageBuildError> = Effect.gen(
  function* () {
    const deps = yield* runHostCommand("apt-cache", ["depends", kernelMetaPackage], { env: { LC_ALL: "C" } })
    const kernel = /Depends: (linux-image-[0-9][^\s]*)/.exec(deps.stdout)?.[1]
    if (!kernel) return yield* new ImageBuildError({ message: `apt knows no ${kernelMetaPackage}; run apt-get update` })
    const names = [...guestPackages, kernel]
    const shown = yield* runHostCommand("apt-cache", ["show", "--no-all-versions", ...names], {
      env: { LC_ALL: "C" },
    })
    const versions = new Map<string, string>()
    for (const stanza of shown.stdout.split(/\n\n+/)) {
      const pkg = /^Package: (.+)$/m.exec(stanza)?.[1]
      const version = /^Version: (.+)$/m.exec(stanza)?.[1]
      if (pkg && version && !versions.has(pkg)) versions.set(pkg, version)
    }
    const missing = names.filter((n) => !versions.has(n))
    if (missing.length > 0) {
      return yield* new ImageBuildError({
        message: `apt has no candidate for ${missing.join(", ")}; run apt-get update`,
      })
    }
    return names.map((name) => ({ name, version: versions.get(name)! })).sort((a, b) => a.name.localeCompare(b.name))
  },
)

/**
 * apt-cache takes ~1 s per call here; its answer only changes when the apt lists do, so it is
 * remembered under a fingerprint of /var/lib/apt/lists (names, sizes, mtimes).
 */
const resolvePackagesCached = (cacheFile: string) =>
  Effect.gen(function* () {
    const listsKey = yield* Effect.promise(aptListsFingerprint)
    const cached = yield* Effect.promise(() =>
      fs.readFile(cacheFile, "utf8").then((t) => JSON.parse(t) as { listsKey: string; packages: Array<Pkg> }, () =>
        undefined)
    )
    if (cached?.listsKey === listsKey && Array.isArray(cached.packages)) {
      return cached.packages
    }
    const packages = yield* resolvePackages
    yield* Effect.promise(async () => {
      await fs.mkdir(path.dirname(cacheFile), { recursive: true })
      const tmp = `${cacheFile}.${process.pid}`
      await fs.writeFile(tmp, JSON.stringify({ listsKey, packages }))
      await fs.rename(tmp, cacheFile)
    })
    return packages
  })

const aptListsFingerprint = async () => {
  const dir = "/var/lib/apt/lists"
  const names = (await fs.readdir(dir).catch(() => [])).sort()
  const h = createHash("sha256").update(guestPackages.join(",") + kernelMetaPackage)
  for (const n of names) {
    const st = await fs.stat(path.join(dir, n)).catch(() => undefined)
    if (st?.isFile()) h.update(`${n}:${st.size}:${st.mtimeMs}\n`)
  }
  return h.digest("hex")
}

const debPrefix = (p: Pkg) => `${p.name}_${p.version.replaceAll(":", "%3a")}_`

/** `apt-get download` whatever the cache lacks; returns the .deb paths in package order. */
const downloadDebs = Effect.fn("ImageBuilder.downloadDebs")(function* (cache: string, packages: ReadonlyArray<Pkg>) {
  yield* Effect.promise(() => fs.mkdir(cache, { recursive: true }))
  const find = async () => {
    const files = await fs.readdir(cache)
    return packages.map((p) => files.find((f) => f.startsWith(debPrefix(p)) && f.endsWith(".deb")))
  }
  const have = yield* Effect.promise(find)
  const missing = packages.filter((_, i) => have[i] === undefined)
  if (missing.length > 0) {
    const dl = path.join(cache, `.dl-${randomBytes(4).toString("hex")}`)
    yield* Effect.acquireUseRelease(
      Effect.promise(() => fs.mkdir(dl, { recursive: true })),
      () =>
        Effect.gen(function* () {
          yield* runHostCommand("apt-get", ["download", "-q", ...missing.map((p) => `${p.name}=${p.version}`)], {
            cwd: dl,
          })
          yield* Effect.promise(async () => {
            for (const f of await fs.readdir(dl)) await fs.rename(path.join(dl, f), path.join(cache, f))
          })
        }),
      () => Effect.promise(() => fs.rm(dl, { recursive: true, force: true })),
    )
  }
  const found = yield* Effect.promise(find)
  const absent = packages.filter((_, i) => found[i] === undefined)
  if (absent.length > 0) {
    return yield* new ImageBuildError({ message: `download did not produce ${absent.map((p) => p.name).join(", ")}` })
  }
  return found.map((f) => path.join(cache, f!))
})

const assemble = Effect.fn("ImageBuilder.assemble")(function* (args: {
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
        })
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
  const manifest: GuestImageManifest = {
    format: manifestFormat,
    name: args.name,
    inputHash: args.inputHash,
    builtAt: new Date().toISOString(),
    kernelVersion: (await fs.readFile(path.join(out, "kernel.version"), "utf8")).trim(),
    packages: args.packages,
    artefacts: {
      kernel: await artefact(artefactFiles.kernel),
      rootfs: await artefact(artefactFiles.rootfs),
      initrd: await artefact(artefactFiles.initrd),
    },
    hostKey: { publicKey: hostKey, fingerprint: sshFingerprint(publicKeyBlob(hostKey)) },
    clientPublicKey: args.clientKey,
  }
  await fs.writeFile(path.join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}

/** The image already in place when its manifest carries this input hash and its files are whole. */
const readCached = (dir: string, inputHash: string) =>
  Effect.promise(async () => {
    const manifest = await readManifest(dir)
    if (manifest?.inputHash !== inputHash) return undefined
    for (const a of Object.values(manifest.artefacts)) {
      const st = await fs.stat(path.join(dir, a.file)).catch(() => undefined)
      if (st?.size !== a.bytes) return undefined
    }
    return toGuestImage(dir, manifest)
  })

export const readManifest = async (dir: string): Promise<GuestImageManifest | undefined> => {
  const text = await fs.readFile(path.join(dir, "manifest.json"), "utf8").catch(() => undefined)
  if (text === undefined) return undefined
  try {
    return Schema.decodeUnknownSync(GuestImageManifest)(JSON.parse(text))
  } catch {
    return undefined
  }
}

const sha256Hex = (s: string) => createHash("sha256").update(s).digest("hex")

const sha256File = (p: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash("sha256")
    createReadStream(p).on("data", (d) => h.update(d)).on("error", reject).on("end", () => resolve(h.digest("hex")))
  })

/** OpenSSH-style "SHA256:<base64 without padding>". */
export const sshFingerprint = (blob: Uint8Array) =>
  `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`
