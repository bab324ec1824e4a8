import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { ImageBuilder } from "../../node/src/image/ImageBuilder.ts"
import { makeNetns } from "../../node/test/support/Netns.ts"
import { testDataDir, testImageLayer } from "../../node/test/support/TestImage.ts"
import { binPath } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"

// Root only: `paws up` building its first guest image (in an empty image dir) shows which phase
// the build is in and for how long, as plain lines in a log and as one line redrawn in place in a
// terminal (tmux). The empty image dir gets the shared test cache's .debs, so nothing is downloaded.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
const scope = Scope.makeUnsafe()
let up: PawsProcess | undefined
const tmuxSession = `paws-up-${process.pid}`
const tmux = (...args: Array<string>) => execFileSync("tmux", args, { encoding: "utf8" })

/** An image dir with no image but the test cache's package list and .debs (symlinked). */
const emptyImageDir = (name: string) => {
  const dir = join(world.dir, name)
  const cache = join(testDataDir, "images", ".cache")
  mkdirSync(join(dir, ".cache", "debs"), { recursive: true })
  copyFileSync(join(cache, "resolved.json"), join(dir, ".cache", "resolved.json"))
  for (const deb of readdirSync(join(cache, "debs")).filter((f) => f.endsWith(".deb"))) {
    symlinkSync(join(cache, "debs", deb), join(dir, ".cache", "debs", deb))
  }
  return dir
}

const upEnv = async (name: string, netns: string) => ({
  PAWS_HOST: "127.0.0.1",
  PAWS_PORT: String(await freePort()),
  PAWS_DATA_DIR: join(world.dir, name, ".paws"),
  PAWS_IMAGE_DIR: emptyImageDir(`${name}-images`),
  PAWS_NODE_SSH_KEY: join(testDataDir, "keys", "node_ed25519"),
  PAWS_NODE_NETNS: netns,
  PAWS_NODE_POOL: "172.16.0.0/24",
  PAWS_NODE_ID: name,
  PAWS_NODE_DEFAULT_SNAPSHOT: "0", // this test watches the image build; no background snapshot build
})

beforeAll(async () => {
  // The shared test image's build leaves the package list and .debs for the current apt lists.
  await Effect.runPromise(ImageBuilder.use((b) => b.build()).pipe(Effect.provide(testImageLayer())))
  world = await makeE2eWorld()
}, 600_000)

afterAll(async () => {
  await up?.kill("SIGTERM")
  try {
    tmux("kill-session", "-t", tmuxSession)
  } catch {
    // never started or already gone
  }
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await world?.close()
}, 60_000)

const phaseLine = /^guest image: (.+) \((\d+) s\)$/

describe("paws up progress", () => {
  it("logs the image build's phases with elapsed seconds before the image is ready (not a TTY)", async () => {
    up = startPaws(["up"], await upEnv("up-log", world.netns))
    await up.waitFor(/local node: started in [\d.]+ s/, 150_000)
    const lines = up.log().split("\n")
    const ready = lines.findIndex((l) => /^guest image: ready in [\d.]+ s /.test(l))
    expect(ready, up.log()).toBeGreaterThan(0)
    const progress = lines.slice(0, ready).map((l) => phaseLine.exec(l)).filter((m) => m !== null)
    const phases = progress.map((m) => m[1]!)
    // The long phases, in build order (sub-second ones may fall between two polls of the script's files).
    const order = [
      "unpacking the packages",
      "assembling the root filesystem (binaries, shared libraries, CA bundle)",
      "hashing the artefacts, writing the manifest",
    ]
    const at = order.map((p) => phases.indexOf(p))
    expect(at.every((i) => i >= 0), up.log()).toBe(true)
    expect(at).toEqual([...at].sort((a, b) => a - b))
    const seconds = progress.map((m) => Number(m[2]))
    expect(seconds).toEqual([...seconds].sort((a, b) => a - b))
    expect(seconds[0]).toBeGreaterThanOrEqual(1) // the first second is quiet
    // Control's first start (embedded database) is reported too, before its URL.
    const controlAt = lines.findIndex((l) => /^paws control: starting \(.+\) \(\d+ s\)$/.test(l))
    expect(controlAt, up.log()).toBeGreaterThanOrEqual(0)
    expect(controlAt).toBeLessThan(lines.findIndex((l) => l.startsWith("paws control: http://")))
    await up.kill("SIGTERM")
  }, 180_000)

  it("redraws one progress line in place in a terminal and erases it when the image is ready", async () => {
    const netns = await Effect.runPromise(Scope.provide(makeNetns("up"), scope))
    const env = await upEnv("up-tty", netns)
    const script = join(world.dir, "up-tty.sh")
    writeFileSync(
      script,
      Object.entries(env).map(([k, v]) => `export ${k}='${v}'\n`).join("") +
        `${process.execPath} ${binPath} up; echo UP-EXITED=$?; sleep 60\n`,
    )
    tmux("new-session", "-d", "-s", tmuxSession, "-x", "160", "-y", "50", `bash ${script}`)
    const spinnerLine = /^[-\\|/] guest image: (.+) {2}(\d+) s$/
    const seen = new Set<string>()
    const deadline = Date.now() + 150_000
    let screen = ""
    while (Date.now() < deadline) {
      screen = tmux("capture-pane", "-p", "-J", "-t", tmuxSession)
      const drawn = screen.split("\n").filter((l) => spinnerLine.test(l.trimEnd()))
      expect(drawn.length, screen).toBeLessThanOrEqual(1) // in place: never a second copy
      for (const l of drawn) seen.add(l.trimEnd())
      if (screen.includes("local node: started") || screen.includes("UP-EXITED")) break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(screen).toContain("local node: started")
    expect(screen).toMatch(/guest image: ready in [\d.]+ s/)
    expect(screen.split("\n").filter((l) => spinnerLine.test(l.trimEnd()))).toEqual([]) // erased
    const phases = new Set([...seen].map((l) => spinnerLine.exec(l)![1]))
    expect(phases.size, [...seen].join("\n")).toBeGreaterThanOrEqual(2)
    // Quit paws up by PID (the pane's bash runs it as its child).
    const panePid = tmux("display-message", "-p", "-t", tmuxSession, "#{pane_pid}").trim()
    const children = readFileSync(`/proc/${panePid}/task/${panePid}/children`, "utf8").trim().split(/\s+/)
    for (const pid of children.filter((p) => p !== "").map(Number)) process.kill(pid, "SIGTERM")
    const deadlineExit = Date.now() + 30_000
    while (!tmux("capture-pane", "-p", "-t", tmuxSession).includes("UP-EXITED") && Date.now() < deadlineExit) {
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(tmux("capture-pane", "-p", "-t", tmuxSession)).toContain("UP-EXITED")
  }, 180_000)
})
