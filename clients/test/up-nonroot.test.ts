import { afterAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { chownSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { binPath } from "./support/CliProcess.ts"

const dir = mkdtempSync(join(tmpdir(), "paws-up-nonroot-"))
let child: ChildProcess | undefined

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child!.once("exit", r))
    child.kill("SIGTERM")
    await exited
  }
  rmSync(dir, { recursive: true, force: true })
})

describe("paws up without root", () => {
  it("starts control only and says how to add a node", async () => {
    chownSync(dir, 65534, 65534)
    child = spawn(process.execPath, [binPath, "up"], {
      cwd: dir,
      uid: 65534,
      gid: 65534,
      env: { PATH: process.env.PATH!, HOME: dir, PAWS_PORT: "0", PAWS_HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let log = ""
    child.stdout!.on("data", (d) => (log += d))
    child.stderr!.on("data", (d) => (log += d))
    const deadline = Date.now() + 90_000
    while (!log.includes("sudo PAWS_CONTROL_URL=") && child.exitCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(log).toContain("starting paws control")
    expect(log).toMatch(/paws control: http:\/\/127\.0\.0\.1:\d+/)
    expect(log).toContain(`admin API key: ${join(dir, ".paws", "admin.key")}`)
    expect(log).toContain("sessions will wait in the queue until a node connects")
    expect(log).toMatch(/sudo PAWS_CONTROL_URL=http:\/\/127\.0\.0\.1:\d+ PAWS_NODE_TOKEN=<token> paws node/)
    expect(child.exitCode).toBeNull()
  }, 120_000)
})
