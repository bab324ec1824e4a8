import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { readFileSync, statSync } from "node:fs"
import { request } from "node:http"
import { join } from "node:path"
import { labelledProcesses } from "../../node/src/network/Reconciler.ts"
import { leftovers } from "../../node/test/support/TestNode.ts"
import { paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only (netns, TAP, nftables, QEMU): `paws up` with its local node in a test netns,
// driven by the real CLI.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let up: PawsProcess
let url = ""
let cli: Record<string, string | undefined> = {}

const api = async (method: string, path: string) => {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${cli.PAWS_API_KEY}` } })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

const noLeftovers = () => Effect.runPromise(leftovers(world.netns))
const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
  } catch {
    return "" // exited meanwhile
  }
}
const qemuIn = async () =>
  (await Effect.runPromise(labelledProcesses(Option.some(world.netns)))).filter((p) => cmdline(p.pid).includes("qemu"))

/** A WebSocket upgrade by hand: the status tells whether control upgraded it. */
const upgradeStatus = (headers: Record<string, string>) =>
  new Promise<number>((resolve) => {
    const req = request(`${url}/v1/nodes/connect`, {
      agent: false, // a refused upgrade closes its connection: never reuse one
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64"),
        ...headers,
      },
    })
    req.on("upgrade", (res, socket) => {
      socket.destroy()
      resolve(res.statusCode ?? 0)
    })
    req.on("response", (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.end()
  })

beforeAll(async () => {
  world = await makeE2eWorld()
  const port = await freePort()
  const dataDir = join(world.dir, ".paws")
  up = startPaws(["up"], {
    ...world.nodeEnv,
    PAWS_HOST: "127.0.0.1",
    PAWS_PORT: String(port),
    PAWS_DATA_DIR: dataDir,
    PAWS_NODE_ID: "e2e-up",
    PAWS_NODE_MAX_VMS: "2",
    PAWS_NODE_HEARTBEAT_MS: "500",
    PAWS_NODE_LOST_AFTER_MS: "3000",
  })
  url = (await up.waitFor(/paws control: (http:\/\/\S+)/))[1]!
  await up.waitFor(/local node: started/, 120_000)
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(dataDir, "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
}, 180_000)

afterAll(async () => {
  await up?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("paws up (control + local node + embedded database)", () => {
  it("says where the API and admin key are, keeps the node token 0600, and lists its node", async () => {
    expect(up.log()).toContain("admin API key:")
    expect(statSync(join(world.dir, ".paws", "node.token")).mode & 0o777).toBe(0o600)
    const nodes = await waitUntil("node listed", () => paws(["nodes"], cli), (r) => r.stdout.includes("e2e-up"))
    expect(nodes.stdout).toMatch(/e2e-up\s+ready\s+0\/2 running/)
    expect(up.log()).not.toContain(readFileSync(join(world.dir, ".paws", "node.token"), "utf8").trim())
  }, 180_000)

  it(
    "paws run: streams output, exits with the workload's code, injects the credential the guest never sees",
    async () => {
      const secret = `sk-e2e-${crypto.randomUUID()}`
      const script = [
        "echo guest-env-hits=$(env | grep -c sk-e2e)",
        "grep -rls sk-e2e /etc /root /tmp 2>/dev/null | wc -l | sed 's/^/guest-file-hits=/'",
        "curl -sS -o /dev/null -w 'api=%{http_code}\\n' https://api.test/v1/messages",
        "exit 3",
      ].join("; ")
      const run = await paws(
        ["run", "--allow", "api.test", "--cred", "api.test:x-api-key=$E2E_SECRET", "--", script],
        { ...cli, E2E_SECRET: secret },
      )
      expect(run.stdout, run.stderr).toContain("guest-env-hits=0")
      expect(run.stdout).toContain("guest-file-hits=0")
      expect(run.stdout).toMatch(/api=\d{3}/)
      expect(run.code).toBe(3)
      expect(run.stdout + run.stderr).not.toContain(secret)
      const hit = world.received.find((r) => r.host === "api.test" && r.url === "/v1/messages")
      expect(hit?.headers["x-api-key"]).toBe(secret)
      await waitUntil("released", noLeftovers, (l) => l.taps.length + l.tables.length + l.processes.length === 0)
    },
    180_000,
  )

  it("cancel via CLI and via API stops the VM: QEMU is gone once the session reads cancelled", async () => {
    for (const how of ["cli", "api"] as const) {
      const started = await paws(["run", "-d", "--", "echo up; sleep 300"], cli)
      const id = started.stdout.trim()
      await waitUntil(`running (${how})`, () => api("GET", `/v1/sessions/${id}`), (r) => r.body.status === "running")
      await waitUntil("qemu up", qemuIn, (q) => q.length === 1)
      if (how === "cli") {
        const c = await paws(["sessions", "cancel", id], cli)
        expect(c.stdout.trim(), c.stderr).toBe(`${id} cancelled`)
      } else {
        const c = await api("DELETE", `/v1/sessions/${id}`)
        expect(c.status).toBe(200)
        expect(c.body.status).toBe("cancelled")
      }
      const session = await api("GET", `/v1/sessions/${id}`)
      expect(session.body).toMatchObject({ status: "cancelled", reason: "cancelled_by_user" })
      // The node confirmed before control said cancelled: its VM is already stopped.
      expect(await qemuIn()).toEqual([])
      await waitUntil("released", noLeftovers, (l) => l.taps.length + l.tables.length + l.processes.length === 0)
    }
  }, 180_000)

  it("a restart under another node id gets a token bound to that id and calls home again", async () => {
    await up.kill("SIGTERM")
    const dataDir = join(world.dir, ".paws")
    const before = readFileSync(join(dataDir, "node.token"), "utf8").trim()
    const port = new URL(url).port
    up = startPaws(["up"], {
      ...world.nodeEnv,
      PAWS_HOST: "127.0.0.1",
      PAWS_PORT: port,
      PAWS_DATA_DIR: dataDir,
      PAWS_NODE_ID: "e2e-up-renamed",
      PAWS_NODE_MAX_VMS: "2",
      PAWS_NODE_HEARTBEAT_MS: "500",
      PAWS_NODE_LOST_AFTER_MS: "3000",
    })
    await up.waitFor(/local node: started/, 120_000)
    const nodes = await waitUntil(
      "renamed node ready",
      () => paws(["nodes"], cli),
      (r) => /e2e-up-renamed\s+ready/.test(r.stdout),
    )
    expect(nodes.stdout).toMatch(/e2e-up-renamed\s+ready/)
    expect(readFileSync(join(dataDir, "node.token"), "utf8").trim()).not.toBe(before)
  }, 180_000)

  it("refuses a wrong, absent or API-key token before upgrading", async () => {
    const id = { "x-paws-node-id": "intruder" }
    expect(await upgradeStatus({ ...id, authorization: "Bearer pawsn_aaaaaaaaaaaa_" + "b".repeat(43) })).toBe(401)
    expect(await upgradeStatus(id)).toBe(401)
    expect(await upgradeStatus({ ...id, authorization: `Bearer ${cli.PAWS_API_KEY}` })).toBe(401)
    const tokens = await paws(["nodes", "token", "list"], cli)
    expect(tokens.stdout).toContain("local node (paws up)")
  }, 180_000)
})
