/**
 * `npm run bench:start` (root): how fast a session starts from a snapshot, beside the raw floor.
 *   raw.agent     bare restore of the snapshot (QEMU, device state, cont, clock/RNG/address refresh)
 *                 + one `exec` over the virtio-serial agent (paws-agent.c)
 *   raw.ssh       the same restore + SSH handshake + one `exec`
 *   node.seq      a session through the node's own lifecycle (LiveSessions → SessionRunner: slot,
 *                 firewall, proxy, restore, guest prepared and workload run over the agent, no SSH)
 *                 → the workload's first command executed in the VM (it prints the guest clock, set
 *                 from the host at restore)
 *   node.conc4    the same, 4 sessions at a time
 *   full.seq      POST /v1/sessions on a real control process (PGlite, its own process) → queue →
 *                 scheduler → Effect RPC over WebSocket → this node → … → the workload's first command
 *   full.conc4    the same, 4 at a time
 *   pooled.*     node.* and full.* through a second node keeping PAWS_NODE_VM_POOL=4 clones loaded and
 *                 paused in ready slots, interleaved with the first node's sessions; each session (or batch
 *                 of 4) arrives once the pool has refilled
 *   burst        PAWS_BENCH_START_BURST=N (default 0: skipped) sessions of `sleep` posted at once to the
 *                pooled node's control: time until all run, start time by how many already ran (start-burst.ts)
 * Targets (issue 22) are checked in `verdict`; the machine's load (`uptime`) is recorded before and after.
 * Runs: PAWS_BENCH_START_RUNS (30). Snapshot: PAWS_BENCH_START_SNAPSHOT (default; or a catalogue image such
 * as debian or claude-agent, built first, whose snapshot takes its name).
 * Results: bench/results/start-<time>.json.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Logger, Option, Stream } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { newSessionId, type SessionDispatch } from "@paws/core"
import { connectGuestShell } from "../node/src/guest/GuestShell.ts"
import { NetnsDialer } from "../node/src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../node/src/guest/NodeSshKey.ts"
import { ImageBuilder } from "../node/src/image/ImageBuilder.ts"
import { NodeServices } from "../node/src/main.ts"
import { guestNetworkOf, NetworkSlot } from "../node/src/network/NetworkSlot.ts"
import { NodeServer } from "../node/src/NodeServer.ts"
import { LiveSessions } from "../node/src/session/LiveSessions.ts"
import { WarmVmPool } from "../node/src/warm/WarmVmPool.ts"
import { agentRun } from "../node/src/guest/AgentShell.ts"
import { SnapshotBuilder } from "../node/src/snapshot/SnapshotBuilder.ts"
import { SnapshotRestore } from "../node/src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../node/src/snapshot/SnapshotStore.ts"
import { makeNetns } from "../node/test/support/Netns.ts"
import { testConfig, testImageLayer } from "../node/test/support/TestImage.ts"
import { cpuMs, nodeCpu } from "./process-cpu.ts"
import { burst, type BurstResult } from "./start-burst.ts"

const here = dirname(fileURLToPath(import.meta.url))
const runs = Number(process.env["PAWS_BENCH_START_RUNS"] ?? 30)
const burstSize = Number(process.env["PAWS_BENCH_START_BURST"] ?? 0)
const uptime = () => execFileSync("uptime").toString().trim()
const ms = (x: number) => Math.round(x * 10) / 10
const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}
const summary = (xs: ReadonlyArray<number>) => ({
  n: xs.length,
  p50: ms(percentile(xs, 50)),
  p99: ms(percentile(xs, 99)),
  min: ms(Math.min(...xs)),
  max: ms(Math.max(...xs)),
})

/**
 * SessionRunner logs each session's step marks (`session <id> completed: slot=4 proxy=58 …`, ms
 * since the dispatch arrived); the bench collects them to record where the time goes.
 */
const stepLog: Array<Record<string, number>> = []
const stepLogger = Logger.make((o) => {
  const text = Array.isArray(o.message) ? o.message.join(" ") : String(o.message)
  const m = /^session \S+ \w+: (.*)$/.exec(text)
  if (m) stepLog.push(Object.fromEntries([...m[1]!.matchAll(/(\S+?)=(\d+)/g)].map((x) => [x[1]!, Number(x[2])])))
})
/** Median of each step over the sessions logged since `from` (pooled ones, or the others). */
const medianSteps = (from: number, pooled: boolean) => {
  const rows = stepLog.slice(from).filter((r) => ("slot(pooled)" in r) === pooled)
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  return Object.fromEntries(keys.map((k) => [k, percentile(rows.flatMap((r) => (k in r ? [r[k]!] : [])), 50)]))
}

/** The workload: busybox `date` has no %N; adjtimex prints the clock to the microsecond. */
// busybox by name: the Debian images carry busybox-static without its applet links
const timestampScript = "busybox adjtimex | grep -E 'time.tv_(sec|usec)'"
const guestEpochMs = (out: string): number | undefined => {
  const sec = /tv_sec:\s*(\d+)/.exec(out)?.[1]
  const usec = /tv_usec:\s*(\d+)/.exec(out)?.[1]
  return sec === undefined || usec === undefined ? undefined : Number(sec) * 1000 + Number(usec) / 1000
}

/** A control plane in its own process, dialling this node (static PAWS_NODES). */
const startControl = (nodeUrl: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dataDir = mkdtempSync(join(os.tmpdir(), "paws-bench-control-"))
      const port = 20000 + Math.floor(Math.random() * 20000)
      const child = spawn(process.execPath, [join(here, "../control/src/main.ts")], {
        env: {
          PATH: process.env["PATH"] ?? "",
          PAWS_HOST: "127.0.0.1",
          PAWS_PORT: String(port),
          PAWS_DATA_DIR: dataDir,
          PAWS_LOG_LEVEL: "Warn",
          PAWS_NODES: nodeUrl,
          PAWS_NODES_TOKEN: "bench",
          // Control's own cap per node (64 by default) would hold a larger burst back whatever the node takes.
          PAWS_NODE_MAX_CONCURRENT: String(Math.max(64, burstSize + 8)),
        },
        stdio: ["ignore", "inherit", "inherit"],
      })
      const base = `http://127.0.0.1:${port}`
      for (let i = 0; i < 600; i++) {
        if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break
        if (child.exitCode !== null) throw new Error("control exited during start")
        await new Promise((r) => setTimeout(r, 100))
      }
      const key = readFileSync(join(dataDir, "admin.key"), "utf8").trim()
      const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" }
      for (let i = 0; i < 300; i++) {
        const nodes = await fetch(`${base}/v1/nodes`, { headers }).then((r) => r.json()) as Array<{ status: string }>
        if (nodes.some((n) => n.status === "ready")) break
        await new Promise((r) => setTimeout(r, 100))
      }
      return { child, dataDir, base, headers }
    }),
    (c) =>
      Effect.promise(async () => {
        c.child.kill("SIGTERM")
        if (c.child.exitCode === null) await new Promise((r) => c.child.once("exit", r))
        rmSync(c.dataDir, { recursive: true, force: true })
      }),
  )

/** Waits (up to 10 s) until the node's VM pool holds `size` idle clones again. */
const poolRefilled = Effect.gen(function* () {
  const pool = yield* WarmVmPool
  for (let i = 0; i < 200 && (yield* pool.idle) < pool.size; i++) yield* Effect.sleep(50)
})

/**
 * Node A restores per session; node B (its own netns) keeps a VM pool. Their rows interleave
 * (a session on one, then on the other) so both see the same machine.
 */
const benchSnapshot = process.env["PAWS_BENCH_START_SNAPSHOT"] ?? "default"

const program = (nodeUrl: string, pooledUrl: string, pooledNode: Context.Context<LiveSessions | WarmVmPool>) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const restorer = yield* SnapshotRestore
    const slots = yield* NetworkSlot
    const sessions = yield* LiveSessions
    const dialer = yield* NetnsDialer
    const key = yield* NodeSshKey

    const existing = yield* store.find(benchSnapshot)
    const build = Option.isSome(existing) ? existing.value.manifest : yield* Effect.scoped(Effect.gen(function* () {
      const slot = yield* slots.acquire(newSessionId())
      return yield* (yield* SnapshotBuilder).build({ name: benchSnapshot, net: guestNetworkOf(slot) })
    }))
    yield* Effect.logInfo(`snapshot built in ${build.buildMs["total"]} ms`)
    const snapshot = Option.getOrThrow(yield* store.find(benchSnapshot))
    // Pooled rows: every session (or batch of 4) arrives at a node whose pool has refilled.
    const settle = poolRefilled.pipe(Effect.provideContext(pooledNode))
    const pooledSessions = Context.get(pooledNode, LiveSessions)
    for (let i = 0; i < 6; i++) yield* settle // the first fill: the pool finds the snapshot within 5 s

    // raw floor: restore + one command, over the agent and over SSH
    const raw = { agent: [] as Array<number>, ssh: [] as Array<number>, phases: [] as Array<Record<string, number>> }
    for (let i = 0; i < runs; i++) {
      for (const via of ["agent", "ssh"] as const) {
        yield* Effect.scoped(Effect.gen(function* () {
          const sessionId = newSessionId()
          const slot = yield* slots.acquire(sessionId)
          const t0 = performance.now()
          const r = yield* restorer.restore(snapshot, { sessionId, ...guestNetworkOf(slot) })
          if (via === "agent") {
            const out = yield* agentRun(r.agent, "echo go", 10_000)
            if (out.output !== "go") return yield* Effect.die(new Error(`agent run: ${JSON.stringify(out)}`))
            raw.agent.push(performance.now() - t0)
            raw.phases.push({ ...r.timings, command: ms(performance.now() - t0) })
            yield* Effect.logDebug(`raw phases ${JSON.stringify(raw.phases.at(-1))}`)
          } else {
            const shell = yield* connectGuestShell({
              dialer,
              host: slot.guestIp,
              hostKeyBlob: snapshot.image.hostKeyBlob,
              privateKey: key.privateKey,
              readyTimeoutMs: 20_000,
            })
            const out = yield* shell.run("echo go", { profile: false })
            if (out.stdout !== "go\n") return yield* Effect.die(new Error(`ssh run: ${JSON.stringify(out)}`))
            raw.ssh.push(performance.now() - t0)
          }
        }))
      }
      yield* Effect.logInfo(
        `raw ${i + 1}/${runs}: agent ${ms(raw.agent.at(-1)!)} ms ${JSON.stringify(raw.phases.at(-1))}, ssh ${
          ms(raw.ssh.at(-1)!)
        } ms`,
      )
    }

    // through the node: first workload command executed in the VM (guest clock, exact after restore)
    const sessionOn = (sessions: LiveSessions["Service"]) =>
      Effect.gen(function* () {
        const dispatch: SessionDispatch = {
          sessionId: newSessionId(),
          snapshot: benchSnapshot,
          workload: { type: "script", script: timestampScript },
          resources: { vcpus: 1, memoryMB: 256 },
          timeoutMs: 60_000,
          network: { allowOut: [], credentials: {} },
        }
        const t0Epoch = Date.now()
        const t0 = performance.now()
        let out = ""
        let firstOutput = Number.NaN
        let status = ""
        yield* sessions.run(dispatch).pipe(Stream.runForEach((e) =>
          Effect.sync(() => {
            if (e._tag === "output" && e.stream === "stdout") {
              if (Number.isNaN(firstOutput)) firstOutput = performance.now() - t0
              out += e.data
            }
            if (e._tag === "status") status = e.status
          })
        ))
        if (status !== "completed") return yield* Effect.die(new Error(`session ended ${status}: ${out}`))
        const guestMs = guestEpochMs(out)
        if (guestMs === undefined) return yield* Effect.die(new Error(`no guest time in ${out}`))
        const executedMs = guestMs - t0Epoch
        return { executedMs, firstOutputMs: firstOutput, doneMs: performance.now() - t0 }
      })
    const session = sessionOn(sessions)
    const pooledSession = sessionOn(pooledSessions)
    type Started = { executedMs: number; firstOutputMs: number; doneMs: number }
    const seq: Array<Started> = []
    const pSeq: Array<Started> = []
    const stepsFrom = stepLog.length
    for (let i = 0; i < runs; i++) {
      yield* settle
      // Alternating which goes first, so neither always follows the other's teardown.
      if (i % 2 === 0) seq.push(yield* session)
      pSeq.push(yield* pooledSession)
      if (i % 2 === 1) seq.push(yield* session)
      yield* Effect.logInfo(
        `node.seq ${i + 1}/${runs}: executed at ${ms(seq.at(-1)!.executedMs)} ms, pooled ${
          ms(pSeq.at(-1)!.executedMs)
        } ms`,
      )
    }
    const seqSteps = medianSteps(stepsFrom, false)
    const pSeqSteps = medianSteps(stepsFrom, true)
    const conc: Array<Started> = []
    const pConc: Array<Started> = []
    for (let i = 0; i < Math.ceil(runs / 4); i++) {
      conc.push(...yield* Effect.all([session, session, session, session], { concurrency: 4 }))
      yield* settle
      pConc.push(
        ...yield* Effect.all([pooledSession, pooledSession, pooledSession, pooledSession], { concurrency: 4 }),
      )
      yield* Effect.logInfo(`node.conc4 batch ${i + 1}: executed at ${conc.slice(-4).map((c) => ms(c.executedMs))} ms`)
    }

    // through the control plane: API → queue → scheduler → RPC → node → … → first command in the VM
    const control = yield* startControl(nodeUrl)
    const pooledControl = yield* startControl(pooledUrl)
    // A session that does not complete is counted (with its reason), not fatal to the run.
    const failures: Array<string> = []
    const viaApiOf = (control: { base: string; headers: Record<string, string> }) =>
      Effect.promise(async () => {
        const t0Epoch = Date.now()
        const t0 = performance.now()
        const res = await fetch(`${control.base}/v1/sessions`, {
          method: "POST",
          headers: control.headers,
          body: JSON.stringify({
            snapshot: benchSnapshot,
            workload: { type: "script", script: timestampScript },
            timeoutMs: 60_000,
          }),
        })
        if (res.status !== 202) throw new Error(`POST /v1/sessions: ${res.status} ${await res.text()}`)
        const { sessionId } = await res.json() as { sessionId: string }
        const acceptedMs = performance.now() - t0
        for (;;) {
          const s = await fetch(`${control.base}/v1/sessions/${sessionId}`, { headers: control.headers })
            .then((r) => r.json()) as { status: string; result: { stdout: string } | null }
          if (["completed", "failed", "timeout", "cancelled", "node_lost"].includes(s.status)) {
            if (s.status !== "completed") {
              failures.push(`${sessionId} ${s.status}: ${JSON.stringify(s.result ?? null).slice(0, 300)}`)
              return undefined
            }
            const guestMs = guestEpochMs(s.result?.stdout ?? "")
            if (guestMs === undefined) throw new Error(`no guest time in ${JSON.stringify(s.result)}`)
            return { executedMs: guestMs - t0Epoch, acceptedMs, completedSeenMs: performance.now() - t0 }
          }
          await new Promise((r) => setTimeout(r, 25))
        }
      })
    const viaApi = viaApiOf(control)
    const pooledViaApi = viaApiOf(pooledControl)
    type Full = { executedMs: number; acceptedMs: number; completedSeenMs: number }
    const ok = (xs: ReadonlyArray<Full | undefined>) => xs.filter((x): x is Full => x !== undefined)
    const fullSeq: Array<Full> = []
    const pFullSeq: Array<Full> = []
    for (let i = 0; i < runs; i++) {
      yield* settle
      if (i % 2 === 0) fullSeq.push(...ok([yield* viaApi]))
      pFullSeq.push(...ok([yield* pooledViaApi]))
      if (i % 2 === 1) fullSeq.push(...ok([yield* viaApi]))
      yield* Effect.logInfo(`full.seq ${i + 1}/${runs}: executed at ${ms(fullSeq.at(-1)?.executedMs ?? NaN)} ms`)
    }
    const fullConc: Array<Full> = []
    const pFullConc: Array<Full> = []
    for (let i = 0; i < Math.ceil(runs / 4); i++) {
      fullConc.push(...ok(yield* Effect.all([viaApi, viaApi, viaApi, viaApi], { concurrency: 4 })))
      yield* settle
      pFullConc.push(
        ...ok(yield* Effect.all([pooledViaApi, pooledViaApi, pooledViaApi, pooledViaApi], { concurrency: 4 })),
      )
      yield* Effect.logInfo(
        `full.conc4 batch ${i + 1}: executed at ${fullConc.slice(-4).map((c) => ms(c.executedMs))} ms`,
      )
    }
    const rows = (
      seqRows: ReadonlyArray<Started>,
      steps: Record<string, number>,
      concRows: ReadonlyArray<Started>,
      fullSeqRows: ReadonlyArray<Full>,
      fullConcRows: ReadonlyArray<Full>,
    ) => ({
      node: {
        seq: {
          executed: summary(seqRows.map((s) => s.executedMs)),
          firstOutput: summary(seqRows.map((s) => s.firstOutputMs)),
          medianStepMarksMs: steps,
        },
        conc4: {
          executed: summary(concRows.map((s) => s.executedMs)),
          firstOutput: summary(concRows.map((s) => s.firstOutputMs)),
        },
      },
      full: {
        seq: {
          executed: summary(fullSeqRows.map((s) => s.executedMs)),
          accepted: summary(fullSeqRows.map((s) => s.acceptedMs)),
        },
        conc4: {
          executed: summary(fullConcRows.map((s) => s.executedMs)),
          accepted: summary(fullConcRows.map((s) => s.acceptedMs)),
        },
      },
    })

    const burstResult: BurstResult | undefined = burstSize > 0
      ? yield* Effect.promise(() =>
        burst(pooledControl, burstSize, () => ({ control: cpuMs(pooledControl.child.pid!).own, ...nodeCpu() }))
      )
      : undefined
    const results = {
      burst: burstResult,
      raw: { agent: summary(raw.agent), ssh: summary(raw.ssh) },
      rawPhasesMs: {
        qmp: summary(raw.phases.map((p) => p["qmp"]!)),
        loaded: summary(raw.phases.map((p) => p["loaded"]!)),
        resumed: summary(raw.phases.map((p) => p["resumed"]!)),
        refreshed: summary(raw.phases.map((p) => p["refreshed"]!)),
      },
      ...rows(seq, seqSteps, conc, fullSeq, fullConc),
      pooled: rows(pSeq, pSeqSteps, pConc, pFullSeq, pFullConc),
      failures,
    }
    return { results, build }
  })

const main = Effect.gen(function* () {
  const loadBefore = uptime()
  const snapshotDir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(os.tmpdir(), "paws-bench-snapshots-"))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })),
  )
  yield* ImageBuilder.use((b) => b.build(benchSnapshot)).pipe(Effect.provide(testImageLayer()), Effect.orDie)
  /** A node with its own layer graph, port and netns (a node's start reconcile owns its netns). */
  const startNode = (name: string, vmPool: number) =>
    Effect.gen(function* () {
      const netns = yield* makeNetns(name)
      const nodePort = 40000 + Math.floor(Math.random() * 20000)
      const config = testConfig({
        PAWS_NODE_HOST: "127.0.0.1",
        PAWS_NODE_PORT: String(nodePort),
        PAWS_NODE_NETNS: netns,
        PAWS_NODE_TOKEN: "bench",
        PAWS_NODE_POOL: "172.16.0.0/22",
        PAWS_NODE_MAX_VMS: String(Math.max(8, vmPool > 0 ? burstSize + vmPool : 0)),
        PAWS_NODE_WARM_POOL: "4",
        PAWS_NODE_VM_POOL: String(vmPool),
        PAWS_NODE_VM_POOL_SNAPSHOT: benchSnapshot,
        PAWS_NODE_DEFAULT_SNAPSHOT: "0",
        PAWS_SNAPSHOT_DIR: snapshotDir,
      })
      const services = yield* Layer.build(
        Layer.mergeAll(SnapshotBuilder.layerNoDeps, NodeServer).pipe(
          Layer.provideMerge(NodeServices),
          Layer.provide(config),
          Layer.provideMerge(Logger.layer([stepLogger], { mergeWithExisting: true })),
        ),
      )
      return { url: `ws://127.0.0.1:${nodePort}/rpc`, services }
    })
  const restoring = yield* startNode("bench", 0)
  const pooledNode = yield* startNode("bench-pool", 4)
  const { results, build } = yield* program(restoring.url, pooledNode.url, pooledNode.services).pipe(
    Effect.provideContext(restoring.services),
  )
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100
  /** Issue 22's targets (TCG, this machine): full stack, POST /v1/sessions → first command in the VM. */
  const targets = {
    pooledSeqP50Ms: 150,
    pooledSeqP99Ms: 400,
    pooledConc4P50Ms: 600,
    unpooledSeqP50Ms: 450,
    pooledOverRawFloor: 1.0,
    burstAllRunningMs: 30_000,
  }
  const time = new Date().toISOString()
  const report = {
    time,
    scope: "raw restore floor; node (LiveSessions → SessionRunner); full stack (API → control → RPC → node); " +
      "pooled.*: the same through a second node (own netns) with PAWS_NODE_VM_POOL=4 (warm paused clones), each " +
      "session or batch of 4 arriving once its pool has refilled; the two nodes' sessions interleave",
    targets,
    verdict: {
      pooledSeqP50: results.pooled.full.seq.executed.p50 <= targets.pooledSeqP50Ms,
      pooledSeqP99: results.pooled.full.seq.executed.p99 <= targets.pooledSeqP99Ms,
      pooledConc4P50: results.pooled.full.conc4.executed.p50 <= targets.pooledConc4P50Ms,
      unpooledSeqP50: results.full.seq.executed.p50 <= targets.unpooledSeqP50Ms,
      pooledOverRawFloor: ratio(results.pooled.full.seq.executed.p50, results.raw.agent.p50) <=
        targets.pooledOverRawFloor,
      ...(results.burst === undefined ? {} : {
        burstAllRunning: results.burst.allRunningMs !== null && results.burst.allRunningMs <= targets.burstAllRunningMs,
      }),
    },
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? "unknown",
      memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      loadAverage: os.loadavg(),
      uptimeBefore: loadBefore,
      uptimeAfter: uptime(),
      note: "shared machine: other sessions ran builds and VM tests meanwhile",
      cpuMHz: /^cpu MHz\s*:\s*([0-9.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown",
    },
    snapshot: {
      name: benchSnapshot,
      memoryMB: build.memoryMB,
      accelerator: build.accelerator,
      buildMs: build.buildMs,
      files: build.files,
    },
    results,
    ratios: {
      fullSeqOverRawSshP50: ratio(results.full.seq.executed.p50, results.raw.ssh.p50),
      fullSeqOverRawAgentP50: ratio(results.full.seq.executed.p50, results.raw.agent.p50),
      fullSeqOverNodeSeqP50: ratio(results.full.seq.executed.p50, results.node.seq.executed.p50),
      pooledFullSeqOverRawAgentP50: ratio(results.pooled.full.seq.executed.p50, results.raw.agent.p50),
    },
  }
  const file = join(here, "results", `start-${time.replaceAll(":", "-").replace(".", "-")}.json`)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(JSON.stringify({ file, ...results, ratios: report.ratios, verdict: report.verdict }, null, 2))
}).pipe(Effect.scoped)

if (import.meta.main) main.pipe(NodeRuntime.runMain)
