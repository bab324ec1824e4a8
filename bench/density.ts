/**
 * `npm run bench:density -- N` (root, under the VM lock): how many sleeping sessions one node holds
 * and what each costs. One node (its own netns, PAWS_NODE_MAX_VMS=N) runs sessions of `sleep 600`
 * through its own lifecycle (LiveSessions → SessionRunner: slot, firewall, proxy, restore, workload),
 * 4 starting at a time, until N run or the host refuses (a session fails, or the run's memory use
 * passes PAWS_BENCH_DENSITY_MAX_GIB, 12 by default: the machine is shared). Then:
 *   marginalMiB     host used memory (MemTotal − MemAvailable) grown per held session
 *   perSessionPss   PSS per session by component: QEMU, proxy, the node process itself, other helpers
 *   startByDensity  session start (dispatch → running) against how many were already running
 *   shutdown        the node's scope closed (what SIGINT does) → time, and what is left: QEMU and
 *                   proxy processes, TAPs and nftables tables in the node's netns
 * Results: bench/results/density-<time>.json with top-level `held` and `marginalMiB`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Deferred, Effect, Exit, FiberSet, Layer, Logger, Option, Scope, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { newSessionId, type SessionDispatch } from "@paws/core"
import { ImageBuilder } from "../node/src/image/ImageBuilder.ts"
import { NodeServices } from "../node/src/main.ts"
import { descendants } from "../node/src/NodeCapacity.ts"
import { cpuMs } from "./process-cpu.ts"
import { guestNetworkOf, NetworkSlot } from "../node/src/network/NetworkSlot.ts"
import { LiveSessions } from "../node/src/session/LiveSessions.ts"
import { SnapshotBuilder } from "../node/src/snapshot/SnapshotBuilder.ts"
import { SnapshotStore } from "../node/src/snapshot/SnapshotStore.ts"
import { makeNetns } from "../node/test/support/Netns.ts"
import { testConfig, testImageLayer } from "../node/test/support/TestImage.ts"

const here = dirname(fileURLToPath(import.meta.url))
const target = Number(process.argv[2] ?? process.env["PAWS_BENCH_DENSITY_N"] ?? 64)
const maxRunBytes = Number(process.env["PAWS_BENCH_DENSITY_MAX_GIB"] ?? 12) * 2 ** 30
const concurrency = 4
/** The TCG translation-cache lever (the node's PAWS_NODE_TCG_CACHE_MIB; 0 = QEMU's own). */
const tcgCacheMiB = process.env["PAWS_NODE_TCG_CACHE_MIB"] ?? "0"
const snapshotName = "default"
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

const meminfo = () => {
  const text = readFileSync("/proc/meminfo", "utf8")
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)![1]) * 1024
  return { used: kb("MemTotal") - kb("MemAvailable"), available: kb("MemAvailable") }
}
const pssKiB = (pid: number) => Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1])

/** PSS (MiB) of this process (the node) and of everything below it, by component. */
const components = () => {
  const self = cpuMs(process.pid)
  const out = {
    qemu: 0,
    proxy: 0,
    other: 0,
    node: pssKiB(process.pid) / 1024,
    qemuCount: 0,
    proxyCount: 0,
    // CPU: the node itself, helpers it ran and reaped (ip, nft, nsenter), and the live QEMUs and proxies.
    cpu: { node: self.own, helpers: self.children, qemu: 0, proxy: 0 },
  }
  for (const p of descendants(process.pid)) {
    let cmdline = ""
    try {
      cmdline = readFileSync(`/proc/${p.pid}/cmdline`, "utf8")
    } catch {
      // exited meanwhile
    }
    let cpu = 0
    try {
      cpu = cpuMs(p.pid).own
    } catch {
      // exited meanwhile
    }
    if (p.qemu) (out.qemu += p.pssKiB / 1024, out.qemuCount++, out.cpu.qemu += cpu)
    else if (/proxy/.test(cmdline)) (out.proxy += p.pssKiB / 1024, out.proxyCount++, out.cpu.proxy += cpu)
    else out.other += p.pssKiB / 1024
  }
  return out
}

const inNetns = (netns: string, argv: ReadonlyArray<string>) => {
  try {
    return execFileSync("ip", ["netns", "exec", netns, ...argv], { encoding: "utf8" })
  } catch {
    return ""
  }
}

const main = Effect.gen(function* () {
  const loadAtStart = os.loadavg()
  const snapshotDir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(os.tmpdir(), "paws-bench-density-"))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })),
  )
  yield* ImageBuilder.use((b) => b.build(snapshotName)).pipe(Effect.provide(testImageLayer()), Effect.orDie)
  const netns = yield* makeNetns("density")
  const config = testConfig({
    PAWS_NODE_NETNS: netns,
    PAWS_NODE_TOKEN: "bench",
    PAWS_NODE_POOL: "172.16.0.0/20",
    PAWS_NODE_MAX_VMS: String(target),
    PAWS_NODE_WARM_POOL: "4",
    PAWS_NODE_VM_POOL: "0",
    PAWS_NODE_DEFAULT_SNAPSHOT: "0",
    PAWS_SNAPSHOT_DIR: snapshotDir,
    PAWS_NODE_TCG_CACHE_MIB: tcgCacheMiB,
  })
  // The node in a scope of its own: closing it is the node's shutdown (SIGINT runs the same finalizers).
  const nodeScope = yield* Scope.make()
  const node = yield* Layer.buildWithScope(
    SnapshotBuilder.layerNoDeps.pipe(
      Layer.provideMerge(NodeServices),
      Layer.provide(config),
      Layer.provide(Logger.layer([], { mergeWithExisting: false })),
    ),
    nodeScope,
  )
  const sessionFibers = yield* FiberSet.make().pipe(Scope.provide(nodeScope))
  // What main's StopSessionsFirst does on SIGINT: bulk teardown before the sessions' scopes close.
  // PAWS_BENCH_STOP=interrupt measures the old path (each session interrupted, releasing its own).
  const stop = process.env["PAWS_BENCH_STOP"] === "interrupt" ? "interrupt" : "bulk"
  if (stop === "bulk") {
    yield* Scope.addFinalizer(nodeScope, Context.get(node, LiveSessions).shutdown("node shut down (bench)"))
  }
  const run = Effect.gen(function* () {
    const store = yield* SnapshotStore
    if (Option.isNone(yield* store.find(snapshotName))) {
      yield* Effect.scoped(Effect.gen(function* () {
        const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
        yield* (yield* SnapshotBuilder).build({ name: snapshotName, net: guestNetworkOf(slot) })
      }))
    }
    const manifest = Option.getOrThrow(yield* store.find(snapshotName)).manifest
    const sessions = yield* LiveSessions
    yield* Effect.sleep("3 seconds") // the proxy pool fills
    const before = meminfo()
    const nodeBefore = components()

    let running = 0
    let refused: string | undefined
    const starts: Array<{ runningBefore: number; ms: number }> = []
    const startOne = Effect.gen(function* () {
      const dispatch: SessionDispatch = {
        sessionId: newSessionId(),
        snapshot: snapshotName,
        workload: { type: "script", script: "sleep 600" },
        resources: { vcpus: 1, memoryMB: manifest.memoryMB },
        timeoutMs: 900_000,
        network: { allowOut: [], credentials: {} },
      }
      const up = yield* Deferred.make<void, string>()
      const t0 = performance.now()
      const runningBefore = running
      // Each session's stream runs in the node's scope, as the node's RPC handlers' do: shutdown interrupts
      // them all at once (as RpcServer does its request fibers), each releasing its VM, proxy, TAP and table.
      yield* sessions.run(dispatch).pipe(
        Stream.runForEach((e) =>
          e._tag !== "status" || e.status === "starting"
            ? Effect.void
            : e.status === "running"
            ? Deferred.succeed(up, undefined)
            : Deferred.fail(up, `session ${e.status}`)
        ),
        Effect.catchCause((cause) => Deferred.fail(up, `failed: ${String(cause).slice(0, 200)}`)),
        Effect.ensuring(Deferred.fail(up, "ended before running")),
        Effect.asVoid,
        FiberSet.run(sessionFibers),
      )
      yield* Deferred.await(up)
      starts.push({ runningBefore, ms: Math.round(performance.now() - t0) })
      running++
    })
    const t0 = performance.now()
    while (running < target && refused === undefined) {
      const batch = Math.min(concurrency, target - running)
      const results = yield* Effect.all(Array.from({ length: batch }, () => Effect.exit(startOne)), {
        concurrency: batch,
      })
      const failed = results.find(Exit.isFailure)
      if (failed !== undefined) refused = `session failed: ${String(failed.cause).slice(0, 300)}`
      else if (meminfo().used - before.used > maxRunBytes) refused = `memory cap of ${mib(maxRunBytes)} MiB reached`
      if (running % 16 === 0) yield* Effect.logInfo(`density: ${running} running`)
    }
    const allRunningMs = Math.round(performance.now() - t0)
    const atAllRunning = components()
    yield* Effect.sleep("10 seconds") // settle: guests idle, page cache and proxies quiet
    const after = meminfo()
    const comp = components()
    const held = running
    return { manifest, before, after, nodeBefore, comp, held, refused, starts, allRunningMs, atAllRunning }
  }).pipe(Effect.provideContext(node))
  const r = yield* run

  const t1 = performance.now()
  yield* Scope.close(nodeScope, Exit.void)
  const shutdownMs = Math.round(performance.now() - t1)
  const left = components()
  const taps = inNetns(netns, ["ip", "-o", "link", "show", "type", "tun"]).split("\n").filter((l) => l.trim())
  const tables = inNetns(netns, ["nft", "list", "tables"]).split("\n").filter((l) => l.trim())

  const per = (x: number) => Math.round((x / Math.max(1, r.held)) * 10) / 10
  const bucket = 16
  const startByDensity = Array.from({ length: Math.ceil(r.held / bucket) }, (_, i) => {
    const xs = r.starts.filter((s) => Math.floor(s.runningBefore / bucket) === i).map((s) => s.ms).sort((a, b) => a - b)
    return { runningBefore: `${i * bucket}-${i * bucket + bucket - 1}`, n: xs.length, p50Ms: xs[xs.length >> 1] }
  })
  const time = new Date().toISOString()
  const report = {
    time,
    held: r.held,
    marginalMiB: per(mib(r.after.used - r.before.used)),
    target,
    refused: r.refused ?? null,
    pssPerSessionMiB: per(
      r.comp.qemu + r.comp.proxy - r.nodeBefore.proxy + r.comp.node - r.nodeBefore.node +
        r.comp.other - r.nodeBefore.other,
    ),
    perSessionPssMiB: {
      qemu: per(r.comp.qemu),
      proxy: per(r.comp.proxy - r.nodeBefore.proxy), // the proxy pool's waiting proxies are there before and after
      node: per(r.comp.node - r.nodeBefore.node),
      other: per(r.comp.other - r.nodeBefore.other),
    },
    counts: { qemu: r.comp.qemuCount, proxies: r.comp.proxyCount },
    // CPU the node spent per session getting it running (the proxy pool's refills count under proxy), by process.
    startCpuMsPerSession: {
      node: per(r.atAllRunning.cpu.node - r.nodeBefore.cpu.node),
      helpers: per(r.atAllRunning.cpu.helpers - r.nodeBefore.cpu.helpers),
      qemu: per(r.atAllRunning.cpu.qemu - r.nodeBefore.cpu.qemu),
      proxy: per(r.atAllRunning.cpu.proxy - r.nodeBefore.cpu.proxy),
    },
    // CPU of the held sessions while they sleep (the 10 s settle), per session, in % of one core.
    idleCpuPercentPerSession: {
      qemu: Math.round(((r.comp.cpu.qemu - r.atAllRunning.cpu.qemu) / 10_000 / Math.max(1, r.held)) * 1000) / 10,
      proxy: Math.round(((r.comp.cpu.proxy - r.atAllRunning.cpu.proxy) / 10_000 / Math.max(1, r.held)) * 1000) / 10,
    },
    timeToAllRunningMs: r.allRunningMs,
    startByDensity,
    shutdown: {
      stop,
      ms: shutdownMs,
      leftQemu: left.qemuCount,
      leftProxies: left.proxyCount,
      leftTaps: taps.length,
      leftNftTables: tables,
    },
    levers: {
      guestRam: "snapshot RAM file mapped private (copy-on-write) by every clone, device state with x-ignore-shared",
      proxy: "bundle with its V8 code cache (ProxyLoader.cjs), malloc tunables",
      tcgCacheMiB: Number(tcgCacheMiB),
    },
    snapshot: { memoryMB: r.manifest.memoryMB, accelerator: r.manifest.accelerator, qemu: r.manifest.qemuVersion },
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? "unknown",
      memoryMiB: mib(os.totalmem()),
      availableAtStartMiB: mib(r.before.available),
      loadavgAtStart: loadAtStart,
      loadavgAtEnd: os.loadavg(),
    },
  }
  const file = join(here, "results", `density-${time.replaceAll(":", "-").replace(".", "-")}.json`)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(JSON.stringify({ file, ...report }, null, 2))
}).pipe(Effect.scoped)

if (import.meta.main) main.pipe(NodeRuntime.runMain)
