import { assert, describe, it } from "@effect/vitest"
import { UnknownSnapshot } from "@paws/core"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { sshFingerprint } from "../src/image/GuestImage.ts"
import { ImageBuilder } from "../src/image/ImageBuilder.ts"
import { ImageStore } from "../src/image/ImageStore.ts"
import { runHostCommand } from "../src/HostCommand.ts"
import { testImageLayer } from "./support/TestImage.ts"

const sha256 = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex")
/** A file inside the ext4 image, read without mounting it. */
const catInImage = (image: string, file: string) =>
  runHostCommand("debugfs", ["-R", `cat ${file}`, image]).pipe(Effect.map((r) => r.stdout))

describe("guest image", () => {
  it.live("builds once; the same inputs again are a cache hit with the same artefacts", () =>
    Effect.gen(function* () {
      const builder = yield* ImageBuilder
      const first = yield* builder.build()
      const started = Date.now()
      const again = yield* builder.build("default")
      assert.isBelow(Date.now() - started, 1000, "a rebuild with unchanged inputs does no work")
      assert.deepStrictEqual(again.manifest, first.manifest)
      const m = first.manifest
      assert.strictEqual(m.name, "default")
      assert.match(m.inputHash, /^[0-9a-f]{64}$/)
      for (const a of Object.values(m.artefacts)) {
        assert.strictEqual(sha256(path.join(first.dir, a.file)), a.sha256, `${a.file} matches its manifest hash`)
      }
      const names = m.packages.map((p) => p.name)
      for (const p of ["busybox-static", "dropbear-bin", "curl", "git", "ca-certificates", "openssh-sftp-server"]) {
        assert.include(names, p)
      }
      assert.isTrue(names.some((n) => /^linux-image-.*-cloud-amd64$/.test(n)))
      assert.isTrue(m.packages.every((p) => p.version.length > 0))
    }).pipe(Effect.provide(testImageLayer())), { timeout: 600_000 })

  it.live("authorises the node's key and pins a per-image host key", () =>
    Effect.gen(function* () {
      const image = yield* (yield* ImageBuilder).build()
      const key = yield* NodeSshKey
      const authorized = yield* catInImage(image.rootfsPath, "/root/.ssh/authorized_keys")
      assert.strictEqual(authorized.trim(), key.publicKey)
      assert.strictEqual(image.manifest.clientPublicKey, key.publicKey)
      assert.match(image.manifest.hostKey.publicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+$/)
      assert.strictEqual(image.manifest.hostKey.fingerprint, sshFingerprint(image.hostKeyBlob))
      const rcS = yield* catInImage(image.rootfsPath, "/etc/rcS")
      for (const s of ["vm.ip=", "vm.gw=", "vm.dns=", " /output", "/etc/resolv.conf", "dropbear"]) {
        assert.include(rcS, s)
      }
      const modules = (yield* runHostCommand("debugfs", ["-R", "ls /lib/modules", image.rootfsPath])).stdout
      for (const m of ["virtio_net.ko", "virtio_blk.ko", "virtio_console.ko", "virtio-rng.ko"]) {
        assert.include(modules, m)
      }
    }).pipe(Effect.provide(testImageLayer())), { timeout: 600_000 })

  it.live("an unknown image name is UnknownSnapshot, never a fallback to another image", () =>
    Effect.gen(function* () {
      const store = yield* ImageStore
      yield* (yield* ImageBuilder).build()
      assert.strictEqual((yield* store.get()).name, "default")
      for (const name of ["no-such-image", "../images/default", "Default"]) {
        const e = yield* Effect.flip(store.get(name))
        assert.instanceOf(e, UnknownSnapshot)
        assert.strictEqual(e.snapshot, name)
        assert.include(e.message, name)
      }
    }).pipe(Effect.provide(testImageLayer())), { timeout: 600_000 })
})
