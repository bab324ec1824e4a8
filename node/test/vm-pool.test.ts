import { assert, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { newSessionId } from "@paws/core"
import { connectGuestShell } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { NodeServices } from "../src/main.ts"
import { Firewall } from "../src/network/Firewall.ts"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { labelledProcesses } from "../src/network/Reconciler.ts"
import type { PooledVm } from "../src/warm/WarmVmPool.ts"
import { WarmVmPool } from "../src/warm/WarmVmPool.ts"
import { agentRun } from "../src/guest/AgentShell.ts"
import { snapshotFiles } from "../src/snapshot/SnapshotManifest.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { SnapshotRestore } from "../src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../src/snapshot/SnapshotStore.ts"
import { Vmm } from "../src/vmm/Vmm.ts"
import { snapshotWorldLayer } from "./support/SnapshotWorld.ts"
import { testConfig } from "./support/TestImage.ts"
import { linksIn, tablesIn } from "./support/TestNet.ts"

const name = "pool-a"
const small = { vcpus: 1, memoryMB: 256 }
const world = Firewall.layerNoDeps.pipe(Layer.provideMerge(snapshotWorldLayer))
const poolOf = (size: number) =>
  WarmVmPool.layerNoDeps.pipe(
    Layer.provide(testConfig({ PAWS_NODE_VM_POOL: String(size), PAWS_NODE_VM_POOL_SNAPSHOT: name })),
  )

/** The snapshot every test takes clones of, built once. */
const ensureSnapshot = Effect.gen(function* () {
  if (Option.isSome(yield* (yield* SnapshotStore).find(name))) return
  yield* Effect.scoped(Effect.gen(function* () {
    const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
    yield* (yield* SnapshotBuilder).build({
      name,
      image: "default",
      setup: "echo pooled > /root/marker",
      memoryMB: small.memoryMB,
      vcpus: small.vcpus,
      net: guestNetworkOf(slot),
    })
  }))
})

const waitFor = <A, E, R>(check: Effect.Effect<A, E, R>, ok: (a: A) => boolean, ms = 30_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* check
      if (ok(a) || Date.now() > deadline) return a
      yield* Effect.sleep(50)
    }
  })

/** Every VM artefact in the world's netns and run root: TAPs, tables, QEMU processes, run dirs. */
const artefacts = Effect.gen(function* () {
  const vmm = yield* Vmm
  const netns = vmm.netns!
  return {
    taps: (yield* linksIn(netns)).filter((l) => l.startsWith("pw")).sort(),
    tables: (yield* tablesIn(netns)).filter((t) => t.startsWith("paws_")).sort(),
    qemus: (yield* labelledProcesses(Option.some(netns))).map((p) => p.pid).sort(),
    runDirs: (yield* Effect.promise(() => fs.readdir(vmm.runDir).catch(() => []))).filter((d) => d.startsWith("vm-"))
      .sort(),
  }
})
const nothing = {
  taps: [] as Array<string>,
  tables: [] as Array<string>,
  qemus: [] as Array<number>,
  runDirs: [] as Array<string>,
}

/** Running (not gone, not a zombie waiting for its reaper). */
const alive = (pid: number) => {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

/** In the guest over the agent: its eth0 address, its clock, 32 random bytes. */
const probe = (c: PooledVm) =>
  agentRun(
    c.agent,
    "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; date +%s; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'",
    10_000,
  ).pipe(Effect.map((r) => {
    const [inet, now, random] = r.output.trim().split("\n")
    return { exitCode: r.exitCode, inet, now: Number(now), random }
  }))

const status = (c: PooledVm) => c.vm.qmp("query-status").pipe(Effect.map((s) => (s as { status: string }).status))

layer(world, { excludeTestServices: true, timeout: 240_000 })("warm VM pool (real VMs)", (it) => {
  it.effect("fills to N paused clones; each is handed out once, refreshed only at resume, refilled; shutdown leaves nothing", () =>
    Effect.gen(function* () {
      yield* ensureSnapshot
      assert.deepStrictEqual(yield* artefacts, nothing)
      const restorer = yield* SnapshotRestore
      const slots = yield* NetworkSlot
      const snapshot = Option.getOrThrow(yield* (yield* SnapshotStore).find(name))

      yield* Effect.scoped(Effect.gen(function* () {
        const pool = yield* WarmVmPool
        const t0 = performance.now()
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)
        const fillMs = Math.round(performance.now() - t0)
        const full = yield* artefacts
        assert.strictEqual(full.qemus.length, 2)
        assert.strictEqual(full.taps.length, 2)
        assert.strictEqual(full.tables.length, 2)
        assert.strictEqual(full.runDirs.length, 2)
        // the guest clock stood still since the snapshot: make the gap obvious
        yield* Effect.sleep(2000)

        // Five concurrent takes from a pool of two: no clone twice.
        const taken = yield* Scope.make()
        const takes = yield* Effect.all(Array.from({ length: 5 }, () => pool.take(name, small)), {
          concurrency: "unbounded",
        }).pipe(Scope.provide(taken))
        const got = takes.flatMap((o) => (Option.isSome(o) ? [o.value] : []))
        assert.isAtLeast(got.length, 2)
        assert.strictEqual(new Set(got.map((c) => c.vm.pid)).size, got.length)
        assert.strictEqual(new Set(got.map((c) => c.slot.tap)).size, got.length)
        assert.strictEqual(new Set(got.map((c) => c.slot.guestIp)).size, got.length)
        const [a, b] = [got[0]!, got[1]!]
        assert.includeMembers(full.qemus, [a.vm.pid, b.vm.pid])
        // Handed out paused: nothing ran in the guest before the taker resumes it.
        assert.deepStrictEqual([yield* status(a), yield* status(b)], ["paused", "paused"])

        const tResume = performance.now()
        const resumed = yield* Effect.all([a.resume, b.resume], { concurrency: 2 })
        const resumeMs = Math.round(performance.now() - tResume)
        assert.strictEqual(resumed[0].vm.pid, a.vm.pid)
        assert.isTrue(Option.isNone(yield* Effect.option(a.resume)), "a clone resumes once")
        const [pa, pb] = [yield* probe(a), yield* probe(b)]
        for (const [c, p] of [[a, pa], [b, pb]] as const) {
          assert.strictEqual(p.exitCode, 0)
          assert.strictEqual(p.inet, `inet ${c.slot.guestIp}/30`)
          assert.approximately(p.now, Date.now() / 1000, 3)
          assert.strictEqual(p.random!.length, 64)
        }
        assert.notStrictEqual(pa.random, pb.random)
        // The clone answers in its pooled slot (SSH from the host: routed, and its firewall table in place).
        const shell = yield* connectGuestShell({
          dialer: yield* NetnsDialer,
          host: a.slot.guestIp,
          hostKeyBlob: snapshot.image.hostKeyBlob,
          privateKey: (yield* NodeSshKey).privateKey,
          readyTimeoutMs: 20_000,
        }).pipe(Scope.provide(taken))
        assert.strictEqual((yield* shell.run("cat /root/marker")).stdout, "pooled\n")

        // Refilled in the background; a request the pool cannot serve takes nothing.
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)
        yield* Effect.scoped(Effect.gen(function* () {
          assert.isTrue(Option.isNone(yield* pool.take(name, { vcpus: 1, memoryMB: 512 })))
          assert.isTrue(Option.isNone(yield* pool.take(name, { vcpus: 2, memoryMB: 256 })))
          assert.isTrue(Option.isNone(yield* pool.take("other", small)))
        }))
        assert.strictEqual(yield* pool.idle, 2)

        // Taken clones are their taker's: its scope tears down VM, run dir, table, TAP.
        yield* Scope.close(taken, Exit.void)
        for (const c of got) assert.isFalse(alive(c.vm.pid))
        const left = yield* artefacts
        for (const c of got) {
          assert.notInclude(left.taps, c.slot.tap)
          assert.notInclude(left.runDirs, path.basename(c.vm.runDir))
        }
        assert.strictEqual(left.qemus.length, 2)

        // For the report: a hand-out (take + resume) against a full restore into a fresh slot.
        const rssKiB = left.qemus.map((pid) =>
          Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1])
        )
        const tTake = performance.now()
        let takeMs = 0
        const one = yield* Effect.scoped(
          pool.take(name, small).pipe(
            Effect.tap(() => Effect.sync(() => (takeMs = Math.round(performance.now() - tTake)))),
            Effect.flatMap((o) => Option.getOrThrow(o).resume),
            Effect.map(() => Math.round(performance.now() - tTake)),
          ),
        )
        const tRestore = performance.now()
        let netMs = 0
        const restored = yield* Effect.scoped(Effect.gen(function* () {
          const id = newSessionId()
          const slot = yield* slots.acquire(id)
          yield* (yield* Firewall).isolate(slot)
          netMs = Math.round(performance.now() - tRestore)
          return yield* restorer.restore(snapshot, {
            sessionId: id,
            tap: slot.tap,
            guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
            gateway: slot.hostIp,
            dns: slot.hostIp,
          })
        }))
        const restoreMs = Math.round(performance.now() - tRestore)
        yield* Effect.logInfo(
          `vm pool: filled 2 in ${fillMs} ms (idle QEMU RSS ${rssKiB.join(", ")} KiB); 2 concurrent resumes ` +
            `${resumeMs} ms; take ${takeMs} ms, take+resume ${one} ms; ` +
            `slot+table+restore ${restoreMs} ms (slot+table ${netMs} ms, restore ${JSON.stringify(restored.timings)})`,
        )
      })).pipe(Effect.provide(poolOf(2)))

      assert.deepStrictEqual(yield* artefacts, nothing)
    }))

  it.effect("replaces a clone that died while idle; never hands out clones of a rebuilt or deleted snapshot", () =>
    Effect.gen(function* () {
      yield* ensureSnapshot
      const store = yield* SnapshotStore
      const dir = path.join(store.dir, name)
      yield* Effect.scoped(Effect.gen(function* () {
        const pool = yield* WarmVmPool
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)
        const before = yield* artefacts

        process.kill(before.qemus[0]!, "SIGKILL")
        const after = yield* waitFor(
          artefacts,
          (x) => x.qemus.length === 2 && !x.qemus.includes(before.qemus[0]!) && x.taps.length === 2,
        )
        assert.include(after.qemus, before.qemus[1]!)
        assert.strictEqual(after.qemus.length, 2)
        assert.strictEqual(after.taps.length, 2)
        assert.strictEqual(after.tables.length, 2)
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)

        // "Rebuilt": a new manifest over the same files. The old clones are never handed out.
        const manifestPath = path.join(dir, snapshotFiles.manifest)
        const manifest = JSON.parse(yield* Effect.promise(() => fs.readFile(manifestPath, "utf8")))
        manifest.createdAt = new Date().toISOString()
        yield* Effect.promise(() => fs.writeFile(manifestPath, JSON.stringify(manifest)))
        assert.isTrue(Option.isNone(yield* Effect.scoped(pool.take(name, small))))
        const refilled = yield* waitFor(
          artefacts,
          (x) => x.qemus.length === 2 && x.qemus.every((pid) => !after.qemus.includes(pid)),
        )
        assert.isTrue(refilled.qemus.every((pid) => !after.qemus.includes(pid)))
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)
        yield* Effect.scoped(Effect.gen(function* () {
          const c = Option.getOrThrow(yield* pool.take(name, small))
          assert.include(refilled.qemus, c.vm.pid)
          yield* c.resume
          assert.strictEqual((yield* probe(c)).inet, `inet ${c.slot.guestIp}/30`)
        }))

        // Deleted: idle clones go and none are made until it is back.
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)
        yield* Effect.promise(() => fs.rename(dir, `${dir}.away`))
        assert.isTrue(Option.isNone(yield* Effect.scoped(pool.take(name, small))))
        const isNothing = (x: typeof nothing) => JSON.stringify(x) === JSON.stringify(nothing)
        assert.deepStrictEqual(yield* waitFor(artefacts, isNothing), nothing)
        yield* Effect.sleep(1000)
        assert.strictEqual(yield* pool.idle, 0)
        yield* Effect.promise(() => fs.rename(`${dir}.away`, dir))
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2, 20_000), 2)
      })).pipe(Effect.provide(poolOf(2)))
      assert.deepStrictEqual(yield* artefacts, nothing)
    }))

  it.effect("a restarted node removes every clone, TAP, table and run dir a SIGKILLed node's pool left, then fills its own", () =>
    Effect.gen(function* () {
      yield* ensureSnapshot
      const store = yield* SnapshotStore
      const vmm = yield* Vmm
      const netns = vmm.netns!
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, [fileURLToPath(new URL("./support/vm-pool-node.ts", import.meta.url))], {
            stdio: ["ignore", "pipe", "inherit"],
            env: {
              ...process.env,
              PAWS_T_NETNS: netns,
              PAWS_T_RUN_DIR: vmm.runDir,
              PAWS_SNAPSHOT_DIR: store.dir,
              PAWS_NODE_VM_POOL: "2",
              PAWS_NODE_VM_POOL_SNAPSHOT: name,
            },
          })
        ),
        (c) => Effect.sync(() => c.kill("SIGKILL")),
      )
      const ready = yield* Effect.callback<boolean>((resume) => {
        child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resume(Effect.succeed(true)))
        child.once("exit", () => resume(Effect.succeed(false)))
      }).pipe(Effect.timeoutOption(60_000))
      assert.isTrue(Option.getOrElse(ready, () => false), "the stand-in node filled its pool")
      child.kill("SIGKILL")
      yield* Effect.callback<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) resume(Effect.void)
        else child.once("exit", () => resume(Effect.void))
      })
      const left = yield* artefacts
      assert.strictEqual(left.qemus.length, 2, "its clones outlive it")
      assert.strictEqual(left.taps.length, 2)
      assert.strictEqual(left.tables.length, 2)
      assert.strictEqual(left.runDirs.length, 2)

      // A restarted node (the real service graph, its own pool on): the start reconcile removes
      // everything the killed one left, then its pool fills, and nothing of the new pool is hit.
      const restarted = NodeServices.pipe(Layer.provide(testConfig({
        PAWS_NODE_NETNS: netns,
        PAWS_RUN_DIR: vmm.runDir,
        PAWS_SNAPSHOT_DIR: store.dir,
        PAWS_NODE_TOKEN: "test-node-token",
        PAWS_NODE_POOL: "172.16.2.0/24",
        PAWS_NODE_WARM_POOL: "0",
        PAWS_NODE_DEFAULT_SNAPSHOT: "0",
        PAWS_NODE_VM_POOL: "2",
        PAWS_NODE_VM_POOL_SNAPSHOT: name,
      })))
      yield* Effect.scoped(Effect.gen(function* () {
        const pool = yield* WarmVmPool
        assert.strictEqual(yield* waitFor(pool.idle, (n) => n === 2), 2)
        for (const pid of left.qemus) assert.isFalse(alive(pid))
        const now = yield* artefacts
        assert.strictEqual(now.qemus.length, 2)
        assert.isTrue(now.qemus.every((pid) => !left.qemus.includes(pid)))
        for (const x of ["taps", "tables", "runDirs"] as const) {
          assert.strictEqual(now[x].length, 2)
          assert.isTrue(now[x].every((t) => !(left[x] as ReadonlyArray<string>).includes(t)))
        }
        yield* Effect.sleep(500)
        assert.deepStrictEqual(yield* artefacts, now, "the new pool's clones stay")
      })).pipe(Effect.provide(restarted))
      assert.deepStrictEqual(yield* artefacts, nothing)
    }))
})
