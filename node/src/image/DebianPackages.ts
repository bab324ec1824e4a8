import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { ImageBuildError } from "./GuestImage.ts"
import { runHostCommand } from "../HostCommand.ts"
import type { HostCommandError } from "../HostCommand.ts"

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
  // build tool, staged only (not in the guest): unpacks the kernel for PVH boot
  "lz4",
  "liblz4-1",
] as const
export const kernelMetaPackage = "linux-image-cloud-amd64"

export interface Pkg {
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
export const resolvePackagesCached = (cacheFile: string) =>
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
export const downloadDebs = Effect.fn("DebianPackages.downloadDebs")(
  function* (cache: string, packages: ReadonlyArray<Pkg>) {
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
  },
)
