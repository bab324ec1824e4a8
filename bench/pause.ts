// deno-lint-ignore-file no-explicit-any -- reads loosely typed JSON replies
/**
 * `npm run bench:pause` (root): pause and resume through a real control and node process, the VM restored
 * from the node's default snapshot.
 *   pauseMs        POST /v1/sessions/{id}/pause until it answers `paused` (VM stopped, memory + disk saved,
 *                  VM, proxy, TAP and firewall released)
 *   resumeMs       POST /v1/sessions/{id}/resume until it answers `running` (restored from the saved files,
 *                  clock/entropy/address refreshed, fresh proxy, CA re-installed)
 *   freshStartMs   the baseline, in the same run: POST /v1/sessions of a new interactive session until it is
 *                  `running` (a restore of the snapshot itself), then cancelled
 *   savedMiB       the paused session's files on the node's disk (migration stream + disk over the snapshot)
 * Every sample pauses and resumes the same session (its guest keeps a counter process running, checked at the end).
 * Runs: PAWS_BENCH_PAUSE_RUNS (10). Results: bench/results/pause-<time>.json. Root only (netns, VMs).
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { paws } from "../clients/test/support/CliProcess.ts"
import { freePort, makeE2eWorld, startPaws } from "../clients/test/support/E2eWorld.ts"
import { waitUntil } from "../clients/test/support/WaitUntil.ts"

const here = dirname(fileURLToPath(import.meta.url))
const runs = Number(process.env["PAWS_BENCH_PAUSE_RUNS"] ?? 10)
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

const world = await makeE2eWorld()
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const control = startPaws(["control"], {
  PAWS_HOST: "127.0.0.1",
  PAWS_PORT: String(port),
  PAWS_DATA_DIR: join(world.dir, "control"),
  PAWS_DISPATCH_INTERVAL_MS: "50",
})
let node: ReturnType<typeof startPaws> | undefined
try {
  await control.waitFor(/paws control is serving/, 120_000)
  const key = readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim()
  const cli = { PAWS_URL: url, PAWS_API_KEY: key, PAWS_CONFIG: join(world.dir, "none.json") }
  const auth = { authorization: `Bearer ${key}` }
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(url + path, {
      method,
      headers: body === undefined ? auth : { ...auth, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await r.text()
    let json: any
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = undefined // exec answers Server-Sent Events
    }
    return { status: r.status, text, json }
  }
  const token = await paws(["nodes", "token", "create", "--name", "bench-pause"], cli)
  const nodeData = join(world.dir, "node")
  node = startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: nodeData,
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: token.stdout.trim(),
    PAWS_NODE_ID: "bench-pause",
    PAWS_NODE_DEFAULT_SNAPSHOT: "1",
  })
  await waitUntil(
    "the node's default snapshot",
    () => call("GET", "/v1/snapshots"),
    (r) => r.json?.some((s: any) => s.name === "default" && s.node === "bench-pause" && s.status === "ready"),
    600_000,
  )
  const running = (id: string) =>
    waitUntil("running", () => call("GET", `/v1/sessions/${id}`), (r) => r.json?.status === "running", 300_000)
  const interactive = { workload: { type: "interactive" }, timeoutMs: 3_600_000 }

  const freshStart: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    const created = await call("POST", "/v1/sessions", interactive)
    await running(created.json.sessionId)
    freshStart.push(performance.now() - t0)
    await call("DELETE", `/v1/sessions/${created.json.sessionId}`)
  }

  const id = (await call("POST", "/v1/sessions", interactive)).json.sessionId as string
  await running(id)
  const exec = (script: string) => call("POST", `/v1/sessions/${id}/exec`, { command: ["sh", "-c", script] })
  await exec(
    "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done' </dev/null >/dev/null 2>&1 &",
  )
  const pauseMs: Array<number> = []
  const resumeMs: Array<number> = []
  let savedMiB = 0
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now()
    const paused = await call("POST", `/v1/sessions/${id}/pause`)
    if (paused.json?.status !== "paused") throw new Error(`pause: ${paused.text}`)
    pauseMs.push(performance.now() - t0)
    savedMiB = Number(
      execFileSync("du", ["-sm", "--apparent-size", join(nodeData, "paused", id)]).toString().split("\t")[0],
    )
    t0 = performance.now()
    const resumed = await call("POST", `/v1/sessions/${id}/resume`)
    if (resumed.json?.status !== "running") throw new Error(`resume: ${resumed.text}`)
    resumeMs.push(performance.now() - t0)
  }
  const counter = await exec("cat /tmp/counter")
  if (!counter.text.includes("event: exit")) throw new Error(`the counter is gone: ${counter.text}`)

  const result = {
    bench: "pause",
    at: new Date().toISOString(),
    runs,
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? "unknown",
      memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      loadAverage: os.loadavg(),
      uptime: execFileSync("uptime").toString().trim(),
      accelerator: /VM accelerator: (\w+)/.exec(node.log())?.[1] ?? "unknown",
      node: process.version,
    },
    guest: { memoryMB: 256, snapshot: "default" },
    pauseMs: summary(pauseMs),
    resumeMs: summary(resumeMs),
    baseline: { freshStartMs: summary(freshStart) },
    savedMiB,
  }
  mkdirSync(join(here, "results"), { recursive: true })
  const out = join(here, "results", `pause-${result.at.replace(/[:.]/g, "-")}.json`)
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n")
  console.log(JSON.stringify(result, null, 2))
  console.log(`written ${out}`)
  await call("DELETE", `/v1/sessions/${id}`)
} finally {
  await node?.kill("SIGTERM")
  await control.kill("SIGTERM")
  await world.close()
}
