import { Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { makeNetns } from "../../../node/test/support/Netns.ts"
import { testDataDir } from "../../../node/test/support/TestImage.ts"
import { type Received, upstreamNames } from "../../../node/test/support/TestNode.ts"
import { binPath } from "./CliProcess.ts"

const upstreamChild = fileURLToPath(new URL("../../../node/test/support/upstream-child.ts", import.meta.url))

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

/** A `paws …` process started by a test; `kill` signals it by PID, `exited` waits for it. */
export interface PawsProcess {
  readonly child: ChildProcess
  readonly log: () => string
  readonly waitFor: (pattern: RegExp, ms?: number) => Promise<RegExpExecArray>
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>
}

export const startPaws = (args: ReadonlyArray<string>, env: Record<string, string>): PawsProcess => {
  const child = spawn(process.execPath, [binPath, ...args], {
    // The exposure listener on any free port (its default, PAWS_PORT+1, may be taken on a shared test machine).
    env: { PATH: process.env.PATH!, PAWS_EXPOSURE_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let log = ""
  child.stdout!.on("data", (d) => (log += d))
  child.stderr!.on("data", (d) => (log += d))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    child,
    log: () => log,
    waitFor: async (pattern, ms = 60_000) => {
      const deadline = Date.now() + ms
      while (Date.now() < deadline) {
        const m = pattern.exec(log)
        if (m) return m
        if (child.exitCode !== null) break
        await new Promise((r) => setTimeout(r, 50))
      }
      throw new Error(`paws ${args.join(" ")}: no ${pattern} in:\n${log}`)
    },
    kill: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal)
        await exited
      }
    },
  }
}

/**
 * The world of an end-to-end test: a fresh netns for the node, HTTPS upstreams (`api.test`,
 * `git.test`, `echo.test`) inside it, a temp dir, and the node settings that point the
 * proxies at those upstreams and reuse the shared test guest image and node key.
 */
export const makeE2eWorld = async () => {
  const scope = Scope.makeUnsafe()
  const netns = await Effect.runPromise(Scope.provide(makeNetns("e2e"), scope))
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, upstreamChild], {
    stdio: ["pipe", "pipe", "inherit"],
  })
  const received: Array<Received> = []
  const upstream = await new Promise<{ port: number; caPem: string }>((resolve, reject) => {
    child.stdin!.write(JSON.stringify({ gitAuth: "Basic eDp5" }) + "\n")
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as { port?: number; caPem?: string; received?: Received }
      if (msg.received) received.push(msg.received)
      else resolve({ port: msg.port!, caPem: msg.caPem! })
    })
    child.once("exit", (code) => reject(new Error(`upstream child exited ${code}`)))
  })
  const dir = mkdtempSync(join(tmpdir(), "paws-e2e-"))
  const nodeEnv = {
    PAWS_NODE_NETNS: netns,
    PAWS_NODE_POOL: "172.16.0.0/24",
    // No background default-snapshot build at node start: tests stay deterministic.
    PAWS_NODE_DEFAULT_SNAPSHOT: "0",
    PAWS_IMAGE_DIR: join(testDataDir, "images"),
    PAWS_NODE_SSH_KEY: join(testDataDir, "keys", "node_ed25519"),
    PAWS_NODE_PROXY_UPSTREAM: JSON.stringify({
      caBundlePem: upstream.caPem,
      resolve: Object.fromEntries(upstreamNames.map((n) => [n, { address: "127.0.0.1", port: upstream.port }])),
      allowPrivateUpstreams: true,
    }),
  }
  return {
    netns,
    dir,
    received,
    nodeEnv,
    close: async () => {
      child.kill("SIGKILL")
      await Effect.runPromise(Scope.close(scope, Exit.void))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
