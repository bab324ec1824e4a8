/**
 * `npm run bench:live` (root): live sessions through a real control and node process (one VM).
 *   exec.http         POST /v1/sessions/{id}/exec of `true` → its `exit` event (control → node → guest agent/SSH)
 *   files.put/get     a 64 KiB file into and out of the guest
 *   port.direct       GET of a 1 KiB page from busybox httpd in the guest, from inside the node's netns
 *   port.exposed      the same page through control's exposure listener, /p/{id}/ (public exposure): control → node RPC → guest
 *   port.addedMs      p50 of exposed minus p50 of direct: what the exposure adds
 * Pause and resume are measured by bench/pause.ts (npm run bench:pause).
 * Runs: PAWS_BENCH_LIVE_RUNS (50). Results: bench/results/live-<time>.json. Root only (netns, VMs).
 */
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { paws } from "../clients/test/support/CliProcess.ts"
import { freePort, makeE2eWorld, startPaws } from "../clients/test/support/E2eWorld.ts"
import { waitUntil } from "../clients/test/support/WaitUntil.ts"

const here = dirname(fileURLToPath(import.meta.url))
const runs = Number(process.env["PAWS_BENCH_LIVE_RUNS"] ?? 50)
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
const timed = async (n: number, f: () => Promise<void>) => {
  const out: Array<number> = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await f()
    out.push(performance.now() - t0)
  }
  return out
}

/** N sequential GETs of `url` from inside `netns`, by a child node process there; its timings (ms). */
const fromNetns = (netns: string, url: string, n: number) =>
  new Promise<Array<number>>((resolve, reject) => {
    const code = `const out=[];for(let i=0;i<${n};i++){const t=performance.now();` +
      `const r=await fetch(${JSON.stringify(url)});await r.arrayBuffer();out.push(performance.now()-t)}` +
      `console.log(JSON.stringify(out))`
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, "--input-type=module", "-e", code])
    let stdout = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => process.stderr.write(d))
    child.on("close", (c) => (c === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`netns fetch exited ${c}`))))
  })

const world = await makeE2eWorld()
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const control = startPaws(["control"], {
  PAWS_HOST: "127.0.0.1",
  PAWS_PORT: String(port),
  PAWS_DATA_DIR: join(world.dir, "control"),
  PAWS_DISPATCH_INTERVAL_MS: "200",
})
let node: ReturnType<typeof startPaws> | undefined
try {
  await control.waitFor(/paws control is serving/, 120_000)
  const key = readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim()
  const cli = { PAWS_URL: url, PAWS_API_KEY: key, PAWS_CONFIG: join(world.dir, "none.json") }
  const auth = { authorization: `Bearer ${key}` }
  const token = await paws(["nodes", "token", "create", "--name", "bench-live"], cli)
  node = startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: token.stdout.trim(),
    PAWS_NODE_ID: "bench-live",
  })
  await waitUntil("node", () => fetch(`${url}/v1/nodes`, { headers: auth }).then((r) => r.json()), (n) => n.length > 0)
  const created = await fetch(`${url}/v1/sessions`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ workload: { type: "interactive" }, timeoutMs: 1_800_000 }),
  }).then((r) => r.json()) as { sessionId: string }
  const id = created.sessionId
  await waitUntil(
    "running",
    () => fetch(`${url}/v1/sessions/${id}`, { headers: auth }).then((r) => r.json()),
    (s) => s.status === "running",
    120_000,
  )
  const exec = async (command: ReadonlyArray<string>) => {
    const r = await fetch(`${url}/v1/sessions/${id}/exec`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ command }),
    })
    const text = await r.text()
    if (!text.includes("event: exit")) throw new Error(`exec ${command.join(" ")}: ${text}`)
    return text
  }
  const execMs = await timed(runs, () => exec(["true"]).then(() => undefined))
  const file = new Uint8Array(64 * 1024).map((_, i) => i % 251)
  const filesUrl = `${url}/v1/sessions/${id}/files?path=/tmp/bench.bin`
  const putMs = await timed(runs, async () => {
    const r = await fetch(filesUrl, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body: file,
    })
    if (r.status !== 204) throw new Error(`PUT ${r.status}: ${await r.text()}`)
  })
  const getMs = await timed(runs, async () => {
    const r = await fetch(filesUrl, { headers: auth })
    if (r.status !== 200) throw new Error(`GET ${r.status}: ${await r.text()}`)
    if ((await r.arrayBuffer()).byteLength !== file.length) throw new Error("GET: wrong size")
  })

  await exec(["sh", "-c", "mkdir -p /tmp/www && head -c 1024 /dev/zero | tr '\\0' x > /tmp/www/index.html"])
  await exec(["httpd", "-p", "8080", "-h", "/tmp/www"])
  const addr = await exec(["sh", "-c", "ip -4 -o addr show eth0"])
  const guestIp = /inet (\d+\.\d+\.\d+\.\d+)/.exec(
    addr.split("\n").filter((l) => l.startsWith("data:")).map((l) =>
      Buffer.from(JSON.parse(l.slice(5)).data ?? "", "base64").toString()
    ).join(""),
  )![1]!
  const exposed = await fetch(`${url}/v1/sessions/${id}/ports`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ port: 8080, access: "public" }),
  }).then((r) => r.json()) as { url: string }
  const direct = await fromNetns(world.netns, `http://${guestIp}:8080/index.html`, runs)
  const viaExposure = await timed(runs, async () => {
    const r = await fetch(exposed.url + "index.html")
    if ((await r.arrayBuffer()).byteLength !== 1024) throw new Error(`exposure: ${r.status}`)
  })

  const result = {
    bench: "live",
    at: new Date().toISOString(),
    runs,
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? "unknown",
      memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      loadAverage: os.loadavg(),
      // what the node's VMM chose (it logs `VM accelerator: kvm|tcg` once it has probed)
      accelerator: /VM accelerator: (\w+)/.exec(node.log())?.[1] ?? "unknown",
      node: process.version,
    },
    execHttpMs: summary(execMs),
    files64KiB: { putMs: summary(putMs), getMs: summary(getMs) },
    port1KiB: {
      directMs: summary(direct),
      exposedMs: summary(viaExposure),
      addedMs: ms(percentile(viaExposure, 50) - percentile(direct, 50)),
    },
  }
  mkdirSync(join(here, "results"), { recursive: true })
  const out = join(here, "results", `live-${result.at.replace(/[:.]/g, "-")}.json`)
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n")
  console.log(JSON.stringify(result, null, 2))
  console.log(`written ${out}`)
  await fetch(`${url}/v1/sessions/${id}`, { method: "DELETE", headers: auth })
} finally {
  await node?.kill("SIGTERM")
  await control.kill("SIGTERM")
  await world.close()
}
