/**
 * `npm run bench:proxy`: the per-VM proxy against the same client talking to the upstream directly
 * and against Debian's mitmproxy doing the same header injection, side by side in one run.
 * Everything is on loopback: a TLS upstream with a throw-away CA, the proxy spawned as the node
 * spawns it (config on stdin), mitmdump in reverse mode with a small injection addon.
 * Spawn: spawn→ready, CPU to ready and idle memory (RSS, PSS, private) of the proxy as the node now
 * starts it (its bundle and code cache, malloc tunables) and as it did before (a startup snapshot of
 * the same bundle; from source), interleaved; and a bare Node process's idle memory, the floor under
 * any Node-based proxy.
 * Results: bench/results/proxy-<time>.json (+ a summary on stdout).
 */
import { execFileSync, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as https from "node:https"
import * as net from "node:net"
import { loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { decodeProxyMessageLine, encodeProxyConfigLine, proxyExecArgv } from "../core/src/ProxyConfig.ts"
import type { ProxyConfig } from "../core/src/ProxyConfig.ts"
import { makeCertificateAuthority } from "../proxy/src/CertificateAuthority.ts"
import { makeLeafCertificateCache } from "../proxy/src/LeafCertificateCache.ts"
import { buildProxyBundle, proxyLoader } from "../proxy/src/ProxyBundleBuild.ts"
import { buildSnapshotBaseline } from "./proxy-snapshot-baseline.ts"
import { describeMachine } from "./machine.ts"
import { proxyMallocEnv } from "../node/src/proxy/ProxyLaunch.ts"

const here = dirname(fileURLToPath(import.meta.url))
const proxyMain = join(here, "../proxy/src/main.ts")
const host = "api.bench.test"
const secret = "sk-bench-0123456789abcdefghijklmnop"
const spawnRuns = Number(process.env["PAWS_BENCH_SPAWNS"] ?? 10)
const latencyRequests = Number(process.env["PAWS_BENCH_REQUESTS"] ?? 2000)
const throughputMs = Number(process.env["PAWS_BENCH_SECONDS"] ?? 5) * 1000
const concurrency = 16

const loopback: net.LookupFunction = (_h, o, cb) =>
  o.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4)

const procMiB = (pid: number, file: string, key: string): number => {
  const line = readFileSync(`/proc/${pid}/${file}`, "utf8").split("\n").find((l) => l.startsWith(`${key}:`))!
  return Math.round((Number.parseInt(line.split(/\s+/)[1]!, 10) / 1024) * 10) / 10
}
const rssMiB = (pid: number): number => procMiB(pid, "status", "VmRSS")
/** Idle memory: RSS (counts the Node binary's pages, shared by every proxy), PSS, and private (anonymous). */
const memoryOf = (pid: number) => ({
  rssMiB: rssMiB(pid),
  pssMiB: procMiB(pid, "smaps_rollup", "Pss"),
  privateMiB: procMiB(pid, "status", "RssAnon"),
})
/** CPU (user + system) the process used so far, in ms (clock ticks of 10 ms). */
const cpuMs = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 1000) / 1000

const startUpstream = async () => {
  const ca = await makeCertificateAuthority()
  const leaves = makeLeafCertificateCache(ca)
  const big = Buffer.alloc(1024 * 1024, "x")
  const server = https.createServer({ SNICallback: leaves.sniCallback, keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume()
    req.on("end", () => {
      if (req.headers["x-api-key"] !== secret) res.writeHead(401).end("no key\n")
      else if (req.url === "/big") res.writeHead(200, { "content-length": big.length }).end(big)
      else res.writeHead(200, { "content-type": "application/json", "content-length": 11 }).end('{"ok":true}')
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { ca, server, port: (server.address() as net.AddressInfo).port }
}

interface Target {
  readonly name: string
  readonly port: number
  readonly ca: string
  readonly headers: Record<string, string>
}

const requester = (target: Target, sockets: number) => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: sockets, lookup: loopback })
  const once = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = https.request({
        host,
        servername: host,
        port: target.port,
        path,
        ca: target.ca,
        agent,
        headers: target.headers,
      }, (res) => {
        let bytes = 0
        res.on("data", (c: Buffer) => (bytes += c.length))
        res.on(
          "end",
          () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`${target.name}: ${res.statusCode}`))),
        )
      })
      req.on("error", reject)
      req.end()
    })
  return { once, close: () => agent.destroy() }
}

const latency = async (target: Target) => {
  const r = requester(target, 1)
  for (let i = 0; i < 200; i++) await r.once("/") // warm-up: connection, JIT, leaf cache
  const samples: Array<number> = []
  for (let i = 0; i < latencyRequests; i++) {
    const t = performance.now()
    await r.once("/")
    samples.push(performance.now() - t)
  }
  r.close()
  samples.sort((a, b) => a - b)
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) }
}

const throughput = async (target: Target, path: string) => {
  const r = requester(target, concurrency)
  await Promise.all(Array.from({ length: concurrency }, () => r.once(path)))
  let requests = 0
  let bytes = 0
  const until = performance.now() + throughputMs
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const n = await r.once(path) // not `bytes += await …`: that reads `bytes` before the await and loses updates
      bytes += n
      requests++
    }
  }))
  const seconds = (performance.now() - started) / 1000
  r.close()
  return {
    requestsPerSecond: Math.round(requests / seconds),
    mebibytesPerSecond: Math.round(bytes / seconds / 2 ** 20),
  }
}

const proxyConfig = (upstreamPort: number, upstreamCa: string): ProxyConfig => ({
  listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
  dnsAnswer: "127.0.0.1",
  allowOut: [host],
  credentials: { [host]: { headers: { "x-api-key": secret } } },
  upstream: {
    caBundlePem: upstreamCa,
    resolve: { [host]: { address: "127.0.0.1", port: upstreamPort } },
    allowPrivateUpstreams: true,
  },
})

interface Launch {
  readonly argv: ReadonlyArray<string>
  readonly env: Record<string, string>
}

const spawnProxy = (config: ProxyConfig, launch: Launch) =>
  new Promise<{ child: ChildProcess; readyMs: number; port: number; ca: string }>((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, [...proxyExecArgv, ...launch.argv], {
      stdio: ["pipe", "pipe", "inherit"],
      env: launch.env,
    })
    child.on("exit", (code) => reject(new Error(`proxy exited ${code}`)))
    let ready = false
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (ready) return // audit lines: drained, not decoded, to leave the CPU to the measured client
      const m = decodeProxyMessageLine(line)
      if (m._tag === "ready") {
        ready = true
        resolve({ child, readyMs: performance.now() - started, port: m.ports.https, ca: m.caCertificatePem })
      }
    })
    child.stdin!.write(encodeProxyConfigLine(config))
  })

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.removeAllListeners("exit")
    child.on("exit", () => resolve())
    child.kill("SIGTERM")
  })

const waitForPort = async (port: number, timeoutMs: number) => {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)))
      s.on("error", () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`port ${port} not listening after ${timeoutMs} ms`)
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })

/** mitmdump in reverse mode, injecting the same header through an addon; undefined when not installed. */
const startMitmproxy = async (upstreamPort: number, upstreamCa: string, dir: string) => {
  try {
    execFileSync("mitmdump", ["--version"], { stdio: "ignore" })
  } catch {
    return undefined
  }
  writeFileSync(join(dir, "upstream-ca.pem"), upstreamCa)
  writeFileSync(
    join(dir, "inject.py"),
    `def request(flow):\n    if flow.request.host_header and flow.request.host_header.split(":")[0] == "${host}":\n` +
      `        flow.request.headers["x-api-key"] = "${secret}"\n`,
  )
  const port = await freePort()
  const child = spawn("mitmdump", [
    "--mode",
    `reverse:https://localhost:${upstreamPort}`,
    "--listen-host",
    "127.0.0.1",
    "--listen-port",
    String(port),
    "--set",
    `confdir=${dir}`,
    "--set",
    `ssl_verify_upstream_trusted_ca=${join(dir, "upstream-ca.pem")}`,
    "--set",
    "keep_host_header=true",
    "--set",
    "flow_detail=0",
    "-q",
    "-s",
    join(dir, "inject.py"),
  ], { stdio: ["ignore", "ignore", "inherit"] })
  await waitForPort(port, 20_000)
  return { child, port, ca: readFileSync(join(dir, "mitmproxy-ca-cert.pem"), "utf8") }
}

const main = async () => {
  const loadAtStart = loadavg()
  const dir = mkdtempSync(join(tmpdir(), "paws-bench-proxy-"))
  const upstream = await startUpstream()
  const config = proxyConfig(upstream.port, upstream.ca.certificatePem)

  const bundle = await buildProxyBundle()
  if (bundle === undefined) throw new Error("rolldown is not installed: no proxy bundle to measure")
  const blob = await buildSnapshotBaseline(dir)
  const launches: Record<string, Launch> = {
    // How the node starts every proxy now.
    bundle: { argv: [proxyLoader, bundle], env: { ...proxyMallocEnv } },
    // How it started them before: a startup snapshot of the same bundle.
    snapshot: { argv: ["--snapshot-blob", blob], env: { ...proxyMallocEnv } },
    // And before that: the sources, with Node's compile cache (the bench runs the proxy
    // unsandboxed, so the cache is writable here, as it is not for the node's sandboxed proxies).
    source: { argv: [proxyMain], env: {} },
  }
  const samples = Object.fromEntries(
    Object.keys(launches).map((
      k,
    ) => [k, {
      readyMs: [] as Array<number>,
      cpuMs: [] as Array<number>,
      idle: [] as Array<ReturnType<typeof memoryOf>>,
    }]),
  )
  for (let i = 0; i < spawnRuns; i++) {
    for (const [name, launch] of Object.entries(launches)) {
      const p = await spawnProxy(config, launch)
      samples[name]!.readyMs.push(p.readyMs)
      samples[name]!.cpuMs.push(cpuMs(p.child.pid!))
      await new Promise((r) => setTimeout(r, 500)) // idle: what a pooled proxy holds while it waits
      samples[name]!.idle.push(memoryOf(p.child.pid!))
      await stop(p.child)
    }
  }
  const median = (xs: ReadonlyArray<number>) => percentile([...xs].sort((a, b) => a - b), 50)
  const spawnReport = Object.fromEntries(
    Object.entries(samples).map(([name, s]) => [name, {
      readyMsP50: median(s.readyMs),
      readyMsMax: Math.max(...s.readyMs.map((x) => Math.round(x * 10) / 10)),
      cpuMsP50: median(s.cpuMs),
      idleRssMiB: median(s.idle.map((m) => m.rssMiB)),
      idlePssMiB: median(s.idle.map((m) => m.pssMiB)),
      idlePrivateMiB: median(s.idle.map((m) => m.privateMiB)),
    }]),
  )

  // The floor any Node-based proxy stands on: a bare Node process idling (same flags and malloc tunables).
  const bare = spawn(process.execPath, [...proxyExecArgv, "-e", "setInterval(() => {}, 1e9)"], {
    stdio: "ignore",
    env: { ...proxyMallocEnv },
  })
  await new Promise((r) => setTimeout(r, 1500))
  const bareNode = memoryOf(bare.pid!)
  await stop(bare)

  const paws = await spawnProxy(config, launches["bundle"]!)
  const mitm = await startMitmproxy(upstream.port, upstream.ca.certificatePem, dir)
  const targets: Array<Target> = [
    { name: "direct", port: upstream.port, ca: upstream.ca.certificatePem, headers: { "x-api-key": secret } },
    { name: "paws", port: paws.port, ca: paws.ca, headers: {} },
    ...(mitm ? [{ name: "mitmproxy", port: mitm.port, ca: mitm.ca, headers: {} }] : []),
  ]
  const results: Record<string, unknown> = {}
  for (const t of targets) {
    results[t.name] = {
      latency: await latency(t),
      small: await throughput(t, "/"),
      big1MiB: await throughput(t, "/big"),
      ...(t.name === "paws" ? { rssAfterLoadMiB: rssMiB(paws.child.pid!) } : {}),
    }
    console.error(`${t.name}: ${JSON.stringify(results[t.name])}`)
  }
  await stop(paws.child)
  if (mitm) mitm.child.kill("SIGTERM")
  upstream.server.closeAllConnections()
  upstream.server.close()
  rmSync(dir, { recursive: true, force: true })

  const direct = results["direct"] as { latency: { p50Ms: number }; small: { requestsPerSecond: number } }
  const pawsR = results["paws"] as typeof direct
  const mitmR = results["mitmproxy"] as typeof direct | undefined
  const report = {
    time: new Date().toISOString(),
    machine: describeMachine(loadAtStart),
    settings: { spawnRuns, latencyRequests, throughputMs, concurrency },
    spawn: spawnReport,
    bareNodeIdle: bareNode,
    results,
    summary: {
      addedP50Ms: Math.round((pawsR.latency.p50Ms - direct.latency.p50Ms) * 1000) / 1000,
      pawsVsMitmproxyThroughput: mitmR
        ? Math.round((pawsR.small.requestsPerSecond / mitmR.small.requestsPerSecond) * 100) / 100
        : null,
      targets: { readyMs: 80, rssMiB: 40, addedP50Ms: 0.5, vsMitmproxy: 3 },
    },
  }
  const out = join(here, "results", `proxy-${report.time.replace(/[:.]/g, "-")}.json`)
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n")
  console.log(JSON.stringify({ spawn: report.spawn, summary: report.summary, file: out }, null, 2))
  process.exit(0)
}

await main()
