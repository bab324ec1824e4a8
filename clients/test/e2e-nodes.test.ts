// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { labelledProcesses } from "../../node/src/network/Reconciler.ts"
import { leftovers } from "../../node/test/support/TestNode.ts"
import { paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only: `paws control` and `paws node` as separate real processes, the node calling home
// from a test netns; short heartbeats so that loss is seen within seconds.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let control: PawsProcess
let node: PawsProcess | undefined
let port = 0
let url = ""
let token = ""
let cli: Record<string, string | undefined> = {}

const controlEnv = () => ({
  PAWS_HOST: "127.0.0.1",
  PAWS_PORT: String(port),
  PAWS_DATA_DIR: join(world.dir, "control"),
  PAWS_NODE_HEARTBEAT_MS: "500",
  PAWS_NODE_LOST_AFTER_MS: "3000",
  PAWS_DISPATCH_INTERVAL_MS: "200",
  PAWS_ADOPT_GRACE_MS: "12000",
})

const startControl = async () => {
  control = startPaws(["control"], controlEnv())
  await control.waitFor(/paws control is serving/, 120_000)
}

const startNode = (nodeToken = token) =>
  startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: nodeToken,
    PAWS_NODE_ID: "e2e-node",
    PAWS_NODE_MAX_VMS: "1",
    PAWS_NODE_LOST_AFTER_MS: "3000",
    PAWS_NODE_ADOPT_GRACE_MS: "10000",
  })

const api = async (method: string, path: string) => {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${cli.PAWS_API_KEY}` } })
  return { status: res.status, body: await res.json() as any }
}

const session = (id: string) => api("GET", `/v1/sessions/${id}`).then((r) => r.body)
const nodeList = () => api("GET", "/v1/nodes").then((r) => r.body as Array<any>)
/** Connected nodes (a lost one stays listed with status lost). */
const nodeIds = () => nodeList().then((ns) => ns.filter((n) => n.status !== "lost").map((n) => n.id as string))
const left = () => Effect.runPromise(leftovers(world.netns))
const labelled = () => Effect.runPromise(labelledProcesses(Option.some(world.netns)))
const detached = async (script: string) => {
  const r = await paws(["run", "-d", "--", script], cli)
  expect(r.code, r.stderr).toBe(0)
  return r.stdout.trim()
}

beforeAll(async () => {
  world = await makeE2eWorld()
  port = await freePort()
  url = `http://127.0.0.1:${port}`
  await startControl()
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
  const created = await paws(["nodes", "token", "create", "--name", "e2e"], cli)
  expect(created.code, created.stderr).toBe(0)
  token = created.stdout.trim()
}, 180_000)

afterAll(async () => {
  await node?.kill("SIGKILL")
  await control?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("control and node as separate processes (call-home)", () => {
  it("a node with a wrong token is refused and keeps retrying; it never registers", async () => {
    const intruder = startNode("pawsn_aaaaaaaaaaaa_" + "b".repeat(43))
    try {
      await intruder.waitFor(/cannot reach control/, 60_000)
      expect(intruder.log()).toMatch(/401/)
      expect(await nodeIds()).toEqual([])
    } finally {
      await intruder.kill("SIGTERM")
    }
  }, 180_000)

  it(
    "node SIGKILLed mid-session: the session fails as node_lost; restarted, the node reconciles and runs again",
    async () => {
      node = startNode()
      await waitUntil("registered", nodeIds, (ids) => ids.includes("e2e-node"))
      const id = await detached("echo up; sleep 300")
      await waitUntil("running", () => session(id), (s) => s.status === "running")
      await node.kill("SIGKILL")
      const lost = await waitUntil("lost", () => session(id), (s) => s.status !== "running", 15_000)
      expect(lost).toMatchObject({ status: "failed", reason: "node_lost" })
      await waitUntil("unregistered", nodeIds, (ids) => ids.length === 0, 15_000)
      expect(await nodeList()).toMatchObject([{ id: "e2e-node", status: "lost" }])
      // What the killed node left: its VM's TAP, firewall table, QEMU and proxy.
      expect((await left()).taps.length).toBe(1)
      expect((await labelled()).length).toBeGreaterThan(0)

      node = startNode()
      await node.waitFor(/calling home/, 60_000)
      expect(node.log()).toMatch(/deleted orphan TAP/)
      expect(await left()).toEqual({ taps: [], tables: [], processes: [] })
      await waitUntil("registered again", nodeIds, (ids) => ids.includes("e2e-node"))
      const again = await paws(["run", "--", "echo after-restart"], cli)
      expect(again.stdout, again.stderr).toContain("after-restart")
      expect(again.code).toBe(0)

      // Drained from the CLI: listed as draining, a new session waits; undrained, it runs.
      const drained = await paws(["nodes", "drain", "e2e-node"], cli)
      expect(drained.code, drained.stderr).toBe(0)
      expect(drained.stdout).toMatch(/e2e-node draining/)
      expect((await paws(["nodes"], cli)).stdout).toMatch(/^e2e-node\s+draining/m)
      const waiting = await detached("echo after-drain")
      await new Promise((r) => setTimeout(r, 1500))
      expect((await session(waiting)).status).toBe("pending")
      const undrained = await paws(["nodes", "undrain", "e2e-node"], cli)
      expect(undrained.code, undrained.stderr).toBe(0)
      await waitUntil("ran after undrain", () => session(waiting), (s) => s.status === "completed", 60_000)
      const unknown = await paws(["nodes", "drain", "no-such-node"], cli)
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toMatch(/no node "no-such-node"/)
    },
    180_000,
  )

  it(
    "a silent node (SIGSTOP) is lost after PAWS_NODE_LOST_AFTER_MS, listed as lost and never scheduled onto; resumed, it stops the failed session's VM, rejoins as ready and runs the queued session",
    async () => {
      const id = await detached("echo up; sleep 300")
      await waitUntil("running", () => session(id), (s) => s.status === "running")
      let queued = ""
      const stoppedAt = Date.now()
      node!.child.kill("SIGSTOP")
      try {
        const lost = await waitUntil("lost", () => session(id), (s) => s.status !== "running", 15_000)
        expect(lost).toMatchObject({ status: "failed", reason: "node_lost" })
        expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(2_500) // silence, not a closed socket
        expect(await nodeIds()).toEqual([])
        // Still listed, as lost, last seen before it went silent (the heartbeat is 500 ms).
        const [listed] = await nodeList()
        expect(listed).toMatchObject({ id: "e2e-node", status: "lost", capacity: { available: 0 } })
        expect(Date.parse(listed.lastSeenAt)).toBeLessThanOrEqual(stoppedAt + 1_000) // a reply already in flight
        expect(Date.parse(listed.lastSeenAt)).toBeGreaterThan(stoppedAt - 5_000)
        const shown = await paws(["nodes"], cli)
        expect(shown.stdout).toMatch(new RegExp(`e2e-node\\s+lost\\s+.*last seen ${listed.lastSeenAt}`))
        // Never scheduled onto while lost: a new session waits in the queue.
        queued = await detached("echo after-silence")
        await new Promise((r) => setTimeout(r, 1_500))
        expect((await session(queued)).status).toBe("pending")
      } finally {
        node!.child.kill("SIGCONT")
      }
      await waitUntil("VM released", left, (l) => l.taps.length + l.tables.length + l.processes.length === 0, 40_000)
      await waitUntil("rejoined", nodeIds, (ids) => ids.includes("e2e-node"), 40_000)
      expect(await nodeList()).toMatchObject([{ id: "e2e-node", status: "ready" }])
      const ran = await waitUntil("queued ran", () => session(queued), (s) => s.status === "completed", 90_000)
      expect(ran.result.stdout).toBe("after-silence\n")
    },
    180_000,
  )

  it(
    "control crashed (SIGKILL) and restarted mid-session: the node keeps the running session and the restarted " +
      "control takes it over (it completes, output intact); pending sessions survive and run",
    async () => {
      const busy = await detached("echo before; sleep 8; echo after")
      await waitUntil("busy running", () => session(busy), (s) => s.status === "running")
      const queued = [await detached("echo queued-1"), await detached("echo queued-2")]
      for (const q of queued) expect((await session(q)).status).toBe("pending")

      // A crash: a clean stop would first drain for up to 20 s (open connections), serving on meanwhile.
      await control.kill("SIGKILL")
      await startControl()
      const done = await waitUntil("busy completed", () => session(busy), (s) => s.status !== "running", 60_000)
      expect(done).toMatchObject({ status: "completed", result: { exitCode: 0, stdout: "before\nafter\n" } })
      for (const q of queued) {
        const ran = await waitUntil("queued ran", () => session(q), (s) => s.status === "completed", 90_000)
        expect(ran.result.stdout).toBe(q === queued[0] ? "queued-1\n" : "queued-2\n")
      }
      expect(await nodeIds(), node!.log().split("\n").slice(-30).join("\n")).toEqual(["e2e-node"])
    },
    180_000,
  )

  it(
    "control away longer than the node's grace: the node stops the session nobody took over, and the restarted " +
      "control fails it (control_restarted)",
    async () => {
      const busy = await detached("sleep 300")
      await waitUntil("busy running", () => session(busy), (s) => s.status === "running")
      await control.kill("SIGTERM")
      const stoppedAt = Date.now()
      // PAWS_NODE_ADOPT_GRACE_MS (10 s) later, the node stops it.
      await waitUntil("node released the busy VM", left, (l) => l.taps.length === 0, 40_000)
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(9_000)
      await startControl()
      const failed = await waitUntil("busy ended", () => session(busy), (s) => s.status !== "running", 30_000)
      expect(failed).toMatchObject({ status: "failed", reason: "control_restarted" })
    },
    180_000,
  )
})
