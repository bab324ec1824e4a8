import { assert, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import { connectGuestShell } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { ImageStore } from "../src/image/ImageStore.ts"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { snapshotFiles } from "../src/snapshot/SnapshotManifest.ts"
import { SnapshotRestore } from "../src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../src/snapshot/SnapshotStore.ts"
import { snapshotWorldLayer } from "./support/SnapshotWorld.ts"

/** A clone in its own network slot, with an SSH shell; everything released with the scope. */
const logDetail = <A, E, R>(e: Effect.Effect<A, E, R>) =>
  e.pipe(Effect.tapError((x) => Effect.logError(String((x as { detail?: string }).detail))))
const restoreClone = (name: string) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const slots = yield* NetworkSlot
    const snapshot = Option.getOrThrow(yield* store.find(name))
    const sessionId = newSessionId()
    const slot = yield* slots.acquire(sessionId)
    const restored = yield* (yield* SnapshotRestore).restore(snapshot, {
      sessionId,
      tap: slot.tap,
      guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
      gateway: slot.hostIp,
      dns: slot.hostIp,
    })
    const sshStart = performance.now()
    const shell = yield* connectGuestShell({
      dialer: yield* NetnsDialer,
      host: slot.guestIp,
      hostKeyBlob: snapshot.image.hostKeyBlob,
      privateKey: (yield* NodeSshKey).privateKey,
      readyTimeoutMs: 20_000,
    })
    yield* Effect.logInfo(
      `restore ${JSON.stringify(restored.timings)}; ssh ${Math.round(performance.now() - sshStart)} ms`,
    )
    return { ...restored, shell, slot, snapshot }
  })

layer(snapshotWorldLayer, { excludeTestServices: true, timeout: 240_000 })("snapshots (real VMs)", (it) => {
  it.effect("builds a snapshot with progress and a manifest; clones restore with fresh randomness, clock and addresses", () =>
    Effect.gen(function* () {
      const builder = yield* SnapshotBuilder
      const slots = yield* NetworkSlot
      const image = yield* (yield* ImageStore).get()
      const phases: Array<string> = []
      const manifest = yield* Effect.scoped(Effect.gen(function* () {
        const slot = yield* slots.acquire(newSessionId())
        return yield* logDetail(builder.build({
          name: "snap-a",
          image: "default",
          setup: "echo prepared-by-setup > /root/marker; head -c 16 /dev/urandom > /root/pre-snapshot-random",
          memoryMB: 256,
          net: guestNetworkOf(slot),
          onProgress: (phase) => phases.push(phase),
        }))
      }))
      assert.deepStrictEqual(phases, ["started", "booted", "setup", "agent", "saved"])
      assert.strictEqual(manifest.image.inputHash, image.manifest.inputHash)
      assert.strictEqual(manifest.image.rootfsSha256, image.manifest.artefacts.rootfs.sha256)
      assert.strictEqual(manifest.memoryMB, 256)
      assert.strictEqual(manifest.files.ram.bytes, 256 * 1024 * 1024)
      assert.isBelow(manifest.files.state.bytes, 1024 * 1024) // device state only: RAM is the mapped file
      assert.include(manifest.cmdline, "vm.ip=172.16.0.")
      assert.include(manifest.devices.join(" "), "virtserialport")
      assert.deepStrictEqual(manifest.macPlan, { guestMac: "52:54:00:00:00:02", hostMac: "02:00:00:00:00:01" })

      // the guest clock stood still since the pause: make the gap obvious
      yield* Effect.sleep(3000)
      const [a, b] = yield* Effect.all([restoreClone("snap-a"), restoreClone("snap-a")], { concurrency: 1 })
      assert.notStrictEqual(a.slot.guestIp, b.slot.guestIp)
      for (const c of [a, b]) {
        // RAM is mapped from the snapshot file, not copied
        const maps = yield* Effect.promise(() => fs.readFile(`/proc/${c.vm.pid}/maps`, "utf8"))
        assert.include(maps, path.join(c.snapshot.dir, snapshotFiles.ram))
        // restored through paws-nothp too: no transparent huge pages for TCG's code buffer
        assert.match(
          yield* Effect.promise(() => fs.readFile(`/proc/${c.vm.pid}/status`, "utf8")),
          /^THP_enabled:\s+0$/m,
        )
        const r = yield* c.shell.run("cat /root/marker; ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; date +%s")
        const [marker, inet, guestNow] = r.stdout.trim().split("\n")
        assert.strictEqual(marker, "prepared-by-setup")
        assert.strictEqual(inet, `inet ${c.slot.guestIp}/30`)
        assert.approximately(Number(guestNow), Date.now() / 1000, 2)
        assert.isBelow(c.timings.refreshed, 10_000)
      }
      const random = (c: typeof a) =>
        c.shell.run("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'").pipe(Effect.map((r) => r.stdout))
      const [ra, rb] = [yield* random(a), yield* random(b)]
      assert.strictEqual(ra.length, 64)
      assert.notStrictEqual(ra, rb)
      // the same through getrandom(2)-backed tools is covered by the CRNG reseed; the pre-snapshot bytes survive
      const pre = yield* a.shell.run("od -An -tx1 /root/pre-snapshot-random | tr -d ' \\n'")
      assert.strictEqual(pre.stdout.length, 32)
    }).pipe(Effect.scoped))

  it.effect("refuses a snapshot whose image or manifest no longer matches; unknown names are None", () =>
    Effect.gen(function* () {
      const store = yield* SnapshotStore
      const good = Option.getOrThrow(yield* store.find("snap-a"))
      const forge = (name: string, change: (m: Record<string, unknown>) => void) =>
        Effect.promise(async () => {
          const dir = path.join(store.dir, name)
          await fs.mkdir(dir)
          for (const f of Object.values(good.manifest.files)) {
            await fs.symlink(path.join(good.dir, f.file), path.join(dir, f.file))
          }
          const m = JSON.parse(JSON.stringify(good.manifest)) as Record<string, unknown>
          change(m)
          await fs.writeFile(path.join(dir, snapshotFiles.manifest), JSON.stringify(m))
        })
      yield* forge("stale-image", (m) => (m["image"] = { ...(m["image"] as object), inputHash: "0".repeat(64) }))
      yield* forge("other-format", (m) => (m["format"] = 99))
      yield* forge("other-devices", (m) => (m["devices"] = ["-M", "pc"]))
      yield* forge("garbled", (m) => delete m["cmdline"])
      const refused = (name: string) => Effect.flip(store.find(name)).pipe(Effect.map((e) => e.message))
      assert.match(
        yield* refused("stale-image"),
        /snapshot "stale-image" cannot be restored: image "default" was rebuilt/,
      )
      assert.match(yield* refused("other-format"), /format 99/)
      assert.match(yield* refused("other-devices"), /device layout changed/)
      assert.match(yield* refused("garbled"), /unreadable manifest/)
      assert.isTrue(Option.isNone(yield* store.find("no-such-snapshot")))
      assert.deepStrictEqual((yield* store.list).map((m) => m.name), [
        "other-devices",
        "other-format",
        "snap-a",
        "stale-image",
      ])
      assert.isTrue(yield* store.remove("snap-a"))
      assert.isTrue(Option.isNone(yield* store.find("snap-a")))
    }))
})
