import { Effect } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, openSync, readFileSync, readlinkSync } from "node:fs"
import { createServer } from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { type Finding, type Needle, scanFd } from "./CanaryScan.ts"
import type { Received } from "./TestNode.ts"

const upstreamChild = fileURLToPath(new URL("./upstream-child.ts", import.meta.url))
const nodeMain = fileURLToPath(new URL("../../src/main.ts", import.meta.url))

/** The test HTTPS upstreams (api.test, git.test, echo.test) inside `netns`; every request they get is recorded. */
export const upstreamsIn = (netns: string, gitAuth: string): Effect.Effect<
  { readonly port: number; readonly caPem: string; readonly received: Array<Received> },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.callback<{ port: number; caPem: string; received: Array<Received>; kill: () => void }>((resume) => {
      const child = spawn("ip", ["netns", "exec", netns, process.execPath, upstreamChild], {
        stdio: ["pipe", "pipe", "inherit"],
      })
      const received: Array<Received> = []
      child.stdin!.write(JSON.stringify({ gitAuth }) + "\n")
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const msg = JSON.parse(line) as { port?: number; caPem?: string; received?: Received }
        if (msg.received) received.push(msg.received)
        else resume(Effect.succeed({ port: msg.port!, caPem: msg.caPem!, received, kill: () => child.kill("SIGKILL") }))
      })
      child.once("exit", (code) => resume(Effect.die(new Error(`upstream child exited ${code}`))))
    }),
    (u) => Effect.sync(u.kill),
  )

export const freePort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
)

/** `paws node` as its own process; everything it (and the proxies it spawns) writes is kept in `log()`. */
export const nodeProcess = (env: Record<string, string>): Effect.Effect<
  { readonly child: ChildProcess; readonly log: () => string },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let log = ""
      const child = spawn(process.execPath, [nodeMain], {
        stdio: ["ignore", "pipe", "pipe"],
        // No background default-snapshot build: it would land in the shared test data dir.
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PAWS_NODE_DEFAULT_SNAPSHOT: "0", ...env },
      })
      child.stdout!.on("data", (d) => (log += d))
      child.stderr!.on("data", (d) => (log += d))
      return { child, log: () => log }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")),
  )

export const exitOf = (child: ChildProcess) =>
  Effect.callback<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

/**
 * Scans the whole address space of a live process (as root, through /proc/PID/mem): for QEMU
 * that includes the guest's RAM, however it is mapped (anonymous, or a private mapping of a
 * snapshot's RAM file). Returns findings, bytes read and the largest mapping (the guest RAM).
 */
export const scanProcessMemory = (pid: number, needles: ReadonlyArray<Needle>) => {
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8").split("\n").filter((l) => l !== "")
  const fd = openSync(`/proc/${pid}/mem`, "r")
  const findings: Array<Finding> = []
  let bytes = 0
  let largest = 0
  try {
    for (const line of maps) {
      const [range, perms, , , , name] = line.split(/\s+/)
      if (!perms!.startsWith("r") || name === "[vvar]" || name === "[vsyscall]" || name === "[vvar_vclock]") continue
      const [lo, hi] = range!.split("-").map((h) => parseInt(h, 16))
      const size = hi! - lo!
      largest = Math.max(largest, size)
      const r = scanFd(fd, lo!, size, needles, `pid ${pid} ${line}`)
      findings.push(...r.findings)
      bytes += r.bytes
    }
  } finally {
    closeSync(fd)
  }
  return { findings, bytes, largest }
}

/** argv and environment of a process, as text. */
export const processArgvEnv = (pid: number): string =>
  [`/proc/${pid}/cmdline`, `/proc/${pid}/environ`].map((p) => readFileSync(p).toString().replace(/\0/g, "\n"))
    .join("\n")

/** The executable behind a pid (to tell QEMU from the proxy among a session's processes). */
export const exeOf = (pid: number): string => {
  try {
    return readlinkSync(`/proc/${pid}/exe`)
  } catch {
    return ""
  }
}
