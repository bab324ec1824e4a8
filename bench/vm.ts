/**
 * `npm run bench:vm`: VM start-up figures on this machine, as root.
 *   rawBootToSsh  bare QEMU microvm cold boot (same image the node uses) → first SSH exec answered.
 * Each measurement is an entry of `measurements` (name → runs → figures); add a sibling entry for
 * other paths (e.g. a full cold-boot session). `PAWS_BENCH_VM=name,…` picks; runs via
 * `PAWS_BENCH_VM_RUNS` (default 10). Results: bench/results/vm-<time>.json (+ summary on stdout).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { connectGuestShell } from "../node/src/guest/GuestShell.ts"
import { NetnsDialer } from "../node/src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../node/src/guest/NodeSshKey.ts"
import type { GuestImage } from "../node/src/image/GuestImage.ts"
import { ImageBuilder } from "../node/src/image/ImageBuilder.ts"
import { makeQemuMicrovm } from "../node/src/vmm/QemuMicrovm.ts"
import { addTestTap, makeNetns } from "../node/test/support/Netns.ts"
import { testConfig } from "../node/test/support/TestImage.ts"
import { coldBootSession } from "./vm-session.ts"

const here = dirname(fileURLToPath(import.meta.url))
const runs = Number(process.env["PAWS_BENCH_VM_RUNS"] ?? 10)
const memoryMB = Number(process.env["PAWS_BENCH_VM_MEMORY_MB"] ?? 256)

/** What every measurement gets: a built image, the node key, a netns with one TAP. */
export interface VmBenchContext {
  readonly image: GuestImage
  readonly privateKey: NodeSshKey["Service"]["privateKey"]
  readonly netns: string
  readonly tap: Effect.Success<ReturnType<typeof addTestTap>>
}

type Figures = Record<string, number | string>
type Measurement = (ctx: VmBenchContext, runs: number) => Effect.Effect<ReadonlyArray<Figures>, unknown, Scope.Scope>

const sessionId = (i: number) => `0190f000-0000-7000-8000-${(Date.now() * 100 + i).toString(16).slice(-12)}`

export const measurements: Record<string, Measurement> = {
  rawBootToSsh: (ctx, n) =>
    Effect.gen(function* () {
      const vmm = yield* makeQemuMicrovm({
        runDir: join(os.tmpdir(), "paws-bench-run"),
        accel: "auto",
        netns: ctx.netns,
      })
      const dialer = yield* NetnsDialer.make(ctx.netns)
      yield* vmm.accelerator(ctx.image.kernelPath) // probe outside the timed runs
      const out: Array<Figures> = []
      for (let i = 0; i < n; i++) {
        const scope = yield* Scope.make()
        const t0 = performance.now()
        const vm = yield* vmm.boot({
          sessionId: sessionId(i),
          image: ctx.image,
          tap: ctx.tap.tap,
          guestMac: ctx.tap.guestMac,
          guestCidr: ctx.tap.guestCidr,
          gateway: ctx.tap.hostIp,
          dns: ctx.tap.hostIp,
          memoryMB,
        }).pipe(Scope.provide(scope))
        const qmpReady = performance.now() - t0
        // wall time until rcS announces readiness on the console (splits boot from SSH handshake)
        const consoleReady = yield* Effect.forkChild(
          Effect.gen(function* () {
            while (!(yield* vm.console).includes("PAWS-VM-READY")) yield* Effect.sleep(10)
            return performance.now() - t0
          }),
        )
        const shell = yield* connectGuestShell({
          dialer,
          host: ctx.tap.guestIp,
          hostKeyBlob: ctx.image.hostKeyBlob,
          privateKey: ctx.privateKey,
          readyTimeoutMs: 60_000,
        }).pipe(Scope.provide(scope))
        const r = yield* shell.run("true", { profile: false })
        const ssh = performance.now() - t0
        if (r.exitCode !== 0) return yield* Effect.die(new Error("guest `true` failed"))
        const ready = yield* Fiber.join(consoleReady).pipe(Effect.timeoutOption(5000))
        const uptime = /PAWS-VM-READY uptime=([0-9.]+)/.exec(yield* vm.console)?.[1]
        const s0 = performance.now()
        yield* Scope.close(scope, Exit.void)
        out.push({
          bootToSshMs: ms(ssh),
          qmpReadyMs: ms(qmpReady),
          consoleReadyMs: Option.isSome(ready) ? ms(ready.value) : "n/a",
          guestUptimeAtReadyMs: uptime ? ms(Number(uptime) * 1000) : "n/a",
          stopMs: ms(performance.now() - s0),
          accelerator: vm.accelerator,
        })
        yield* Effect.logInfo(`rawBootToSsh ${i + 1}/${n}: ${ms(ssh)} ms`)
      }
      return out
    }),
  coldBootSession,
}

const ms = (x: number) => Math.round(x * 10) / 10
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const summarise = (rows: ReadonlyArray<Figures>) => {
  const summary: Record<string, unknown> = {}
  for (const key of Object.keys(rows[0] ?? {})) {
    const values = rows.map((r) => r[key]).filter((v): v is number => typeof v === "number").sort((a, b) => a - b)
    if (values.length === 0) summary[key] = rows[0]![key]
    else summary[key] = { p50: percentile(values, 50), p99: percentile(values, 99), min: values[0], max: values.at(-1) }
  }
  return summary
}

const sh = (cmd: string, args: Array<string>) => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

const machine = () => ({
  cpus: os.cpus().length,
  model: os.cpus()[0]?.model ?? "unknown",
  cpuMHz: /^cpu MHz\s*:\s*([0-9.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown",
  memoryMiB: Math.round(os.totalmem() / 2 ** 20),
  kernel: os.release(),
  qemu: sh("qemu-system-x86_64", ["--version"]).split("\n")[0],
  node: process.version,
  loadAverage: os.loadavg(),
})

const program = Effect.gen(function* () {
  const selected = (process.env["PAWS_BENCH_VM"] ?? Object.keys(measurements).join(",")).split(",")
  const image = yield* (yield* ImageBuilder).build()
  const key = yield* NodeSshKey
  const netns = yield* makeNetns("bench")
  const tap = yield* addTestTap(netns)
  const ctx: VmBenchContext = { image, privateKey: key.privateKey, netns, tap }
  const results: Record<string, unknown> = {}
  for (const name of selected) {
    const m = measurements[name]
    if (!m) return yield* Effect.die(new Error(`unknown measurement ${name}`))
    const rows = yield* Effect.scoped(m(ctx, runs))
    results[name] = { runs: rows.length, summary: summarise(rows), rows }
  }
  const time = new Date().toISOString()
  const report = {
    time,
    machine: machine(),
    settings: { runs, memoryMB, image: { name: image.name, inputHash: image.manifest.inputHash } },
    results,
  }
  const file = join(here, "results", `vm-${time.replaceAll(":", "-").replace(".", "-")}.json`)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(
    JSON.stringify(
      {
        file,
        ...Object.fromEntries(Object.entries(results).map(([k, v]) => [k, (v as { summary: unknown }).summary])),
      },
      null,
      2,
    ),
  )
}).pipe(Effect.scoped)

if (import.meta.main) {
  program.pipe(
    Effect.provide(
      Layer.mergeAll(ImageBuilder.layerNoDeps).pipe(Layer.provideMerge(NodeSshKey.layer), Layer.provide(testConfig())),
    ),
    NodeRuntime.runMain,
  )
}
