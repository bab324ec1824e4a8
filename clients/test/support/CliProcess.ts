import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../../src/bin.ts", import.meta.url))

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `paws ARGS` as a real process (the project's Node 24) and collects its output. */
export const paws = (args: ReadonlyArray<string>, env: Record<string, string | undefined>, cwd?: string) =>
  new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { env: { ...process.env, ...env }, cwd })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/** A real `paws control` process on a free port with its own data dir; `stop()` ends it by PID. */
export const startControl = async (extraEnv: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), "paws-cli-"))
  const child: ChildProcess = spawn(process.execPath, [binPath, "control"], {
    env: { ...process.env, PAWS_PORT: "0", PAWS_HOST: "127.0.0.1", PAWS_DATA_DIR: join(dir, ".paws"), ...extraEnv },
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  })
  let log = ""
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control did not start:\n${log}`)), 30_000)
    child.stdout!.on("data", (d) => {
      log += d
      const m = /"api":"(http:\/\/[^"]+)\/v1"/.exec(log)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.stderr!.on("data", (d) => (log += d))
    child.on("exit", (code) => reject(new Error(`control exited ${code}:\n${log}`)))
  })
  return {
    url,
    dir,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r))
        child.kill("SIGTERM")
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
