import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import ssh2 from "ssh2"
import { dataDirConfig } from "../image/GuestImage.ts"
import { nodeSettings } from "../NodeConfig.ts"

/**
 * The node's SSH client key (ed25519): authorised for root in every image this node builds,
 * used by GuestShell. Created on first use, kept 0600 under `<data>/keys/`.
 */
export class NodeSshKey extends Context.Service<NodeSshKey, {
  readonly privateKey: Redacted.Redacted<string>
  /** "ssh-ed25519 AAAA… paws-node" */
  readonly publicKey: string
  readonly path: string
}>()("paws/guest/NodeSshKey") {
  static readonly layer = Layer.effect(
    NodeSshKey,
    Effect.gen(function* () {
      const dataDir = yield* dataDirConfig
      const configured = yield* nodeSettings.sshKey.config
      const keyPath = path.resolve(Option.getOrElse(configured, () => path.join(dataDir, "keys", "node_ed25519")))
      const key = yield* Effect.promise(() => loadOrCreate(keyPath))
      return NodeSshKey.of({ privateKey: Redacted.make(key.privateKey), publicKey: key.publicKey, path: keyPath })
    }),
  )
}

const loadOrCreate = async (keyPath: string): Promise<{ privateKey: string; publicKey: string }> => {
  const existing = await fs.readFile(keyPath, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined
    throw e
  })
  if (existing !== undefined) return { privateKey: existing, publicKey: publicKeyOf(existing) }
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "paws-node" })
  await fs.mkdir(path.dirname(keyPath), { recursive: true, mode: 0o700 })
  // write, then link into place: concurrent creators agree on whichever link won
  const tmp = `${keyPath}.${process.pid}.${Date.now()}`
  await fs.writeFile(tmp, pair.private, { mode: 0o600 })
  await fs.link(tmp, keyPath).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "EEXIST") throw e
  }).finally(() => fs.rm(tmp, { force: true }))
  const privateKey = await fs.readFile(keyPath, "utf8")
  const publicKey = publicKeyOf(privateKey)
  await fs.writeFile(`${keyPath}.pub`, `${publicKey}\n`, { mode: 0o644 })
  return { privateKey, publicKey }
}

const publicKeyOf = (privateKey: string): string => {
  const parsed = ssh2.utils.parseKey(privateKey)
  if (parsed instanceof Error) throw parsed
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  return `${key.type} ${key.getPublicSSH().toString("base64")} paws-node`
}
