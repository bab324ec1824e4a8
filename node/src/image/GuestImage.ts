import { Config, Data, Schema } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { nodeSettings } from "../NodeConfig.ts"

/** One file of a built image, pinned by content. */
export const ImageArtefact = Schema.Struct({
  file: Schema.String,
  sha256: Schema.String,
  bytes: Schema.Number,
})

/** `manifest.json` beside the artefacts of one named image. */
export const GuestImageManifest = Schema.Struct({
  format: Schema.Literal(1),
  name: Schema.String,
  /** sha256 over package list + versions + build script + client key: equal hash, same image. */
  inputHash: Schema.String,
  builtAt: Schema.String,
  kernelVersion: Schema.String,
  packages: Schema.Array(Schema.Struct({ name: Schema.String, version: Schema.String })),
  artefacts: Schema.Struct({ kernel: ImageArtefact, rootfs: ImageArtefact, initrd: ImageArtefact }),
  /** The guest's dropbear host key; clients pin it and reject any other. */
  hostKey: Schema.Struct({ publicKey: Schema.String, fingerprint: Schema.String }),
  clientPublicKey: Schema.String,
})
export type GuestImageManifest = typeof GuestImageManifest.Type

/** A built image ready to boot: absolute paths plus what a client must pin. */
export interface GuestImage {
  readonly name: string
  readonly dir: string
  readonly kernelPath: string
  readonly rootfsPath: string
  readonly initrdPath: string
  /** SSH wire-format public key blob of the guest host key (what ssh2's hostVerifier receives). */
  readonly hostKeyBlob: Uint8Array
  readonly manifest: GuestImageManifest
}

export const defaultImageName = "default"

/** Root of node state; images, keys and runtime dirs live below unless configured apart. */
export const dataDirConfig = nodeSettings.dataDir.config

export const imageDirConfig = Config.all({
  dataDir: dataDirConfig,
  imageDir: nodeSettings.imageDir.config,
}).pipe(
  Config.map(({ dataDir, imageDir }) =>
    path.resolve(imageDir._tag === "Some" ? imageDir.value : path.join(dataDir, "images"))
  ),
)

export const artefactFiles = {
  kernel: "vmlinuz",
  rootfs: "rootfs.ext4",
  initrd: "initramfs-boot.cpio.gz",
} as const

/** "ssh-ed25519 AAAA… [comment]" → the decoded key blob. */
export const publicKeyBlob = (line: string): Uint8Array => {
  const b64 = line.trim().split(/\s+/)[1]
  if (b64 === undefined) throw new Error(`not an OpenSSH public key line: ${line.slice(0, 40)}`)
  return new Uint8Array(Buffer.from(b64, "base64"))
}

export const toGuestImage = (dir: string, manifest: GuestImageManifest): GuestImage => ({
  name: manifest.name,
  dir,
  kernelPath: path.join(dir, manifest.artefacts.kernel.file),
  rootfsPath: path.join(dir, manifest.artefacts.rootfs.file),
  initrdPath: path.join(dir, manifest.artefacts.initrd.file),
  hostKeyBlob: publicKeyBlob(manifest.hostKey.publicKey),
  manifest,
})

export class ImageBuildError extends Data.TaggedError("ImageBuildError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export const readManifest = async (dir: string): Promise<GuestImageManifest | undefined> => {
  const text = await fs.readFile(path.join(dir, "manifest.json"), "utf8").catch(() => undefined)
  if (text === undefined) return undefined
  try {
    return Schema.decodeUnknownSync(GuestImageManifest)(JSON.parse(text))
  } catch {
    return undefined
  }
}

/** OpenSSH-style "SHA256:<base64 without padding>". */
export const sshFingerprint = (blob: Uint8Array) =>
  `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`
