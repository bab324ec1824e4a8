// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only: real `paws control` and `paws node` processes (the node restarted while a session is
// paused), real VMs restored from the node's default snapshot, the real CLI.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let control: PawsProcess
let node: PawsProcess
let url = ""
let cli: Record<string, string | undefined> = {}
let nodeToken = ""

const api = async (method: string, path: string, body?: unknown) => {
  const headers: Record<string, string> = { authorization: `Bearer ${cli.PAWS_API_KEY}` }
  if (body !== undefined) headers["content-type"] = "application/json"
  const res = await fetch(url + path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  let json: any
  try {
    json = text === "" ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, json, text }
}

/** stdout of a command run in the session's VM (POST /exec, SSE decoded). */
const sh = async (id: string, script: string) => {
  const r = await api("POST", `/v1/sessions/${id}/exec`, { command: ["sh", "-c", script] })
  expect(r.status, r.text).toBe(200)
  return r.text.split("\n\n").filter((f) => f.startsWith("event: stdout")).map((f) =>
    Buffer.from(JSON.parse(/^data: (.*)$/m.exec(f)![1]!).data, "base64").toString("utf8")
  ).join("")
}

const waitStatus = (id: string, ok: (s: string) => boolean, ms = 240_000) =>
  waitUntil(`session ${id} status`, () => api("GET", `/v1/sessions/${id}`), (r) => ok(r.json?.status), ms)

const startNode = () =>
  startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: nodeToken,
    PAWS_NODE_ID: "e2e-pause",
    PAWS_NODE_MAX_VMS: "1", // the paused session must free the only slot
    PAWS_NODE_DEFAULT_SNAPSHOT: "1", // sessions restore the default snapshot: only restored VMs pause
  })

/** The node is connected and its default snapshot built (sessions restore it; before that they would cold-boot). */
const nodeUp = async () => {
  await waitUntil(
    "node registered",
    () => api("GET", "/v1/nodes"),
    (r) => r.json?.some((n: any) => n.id === "e2e-pause" && n.status === "ready"),
    120_000,
  )
  await waitUntil(
    "default snapshot ready",
    () => api("GET", "/v1/snapshots"),
    (r) => r.json?.some((s: any) => s.name === "default" && s.node === "e2e-pause" && s.status === "ready"),
    300_000,
  )
}

beforeAll(async () => {
  world = await makeE2eWorld()
  const port = await freePort()
  url = `http://127.0.0.1:${port}`
  control = startPaws(["control"], {
    PAWS_HOST: "127.0.0.1",
    PAWS_PORT: String(port),
    PAWS_DATA_DIR: join(world.dir, "control"),
    PAWS_DISPATCH_INTERVAL_MS: "200",
  })
  await control.waitFor(/paws control is serving/, 120_000)
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
  const created = await paws(["nodes", "token", "create", "--name", "e2e-pause"], cli)
  expect(created.code, created.stderr).toBe(0)
  nodeToken = created.stdout.trim()
  node = startNode()
  await nodeUp()
}, 360_000)

afterAll(async () => {
  await node?.kill("SIGTERM")
  await control?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("pause and resume end to end (real control, node restart, VMs; real CLI)", () => {
  it(
    "paws pause saves a live session and frees the node's only slot; its credential is rotated and the node " +
      "restarted while paused; paws resume brings back its files and a still-counting process, and the guest's " +
      "requests carry the rotated credential",
    async () => {
      const created = await api("POST", "/v1/sessions", {
        workload: { type: "interactive" },
        timeoutMs: 600_000,
        network: {
          allowOut: ["api.test"],
          credentials: { "api.test": { headers: { "x-api-key": "tok-before-rotation" } } },
        },
      })
      expect(created.status, created.text).toBe(202)
      const id = created.json.sessionId as string
      await waitStatus(id, (s) => s === "running" || s === "failed")
      expect((await api("GET", `/v1/sessions/${id}`)).json.status).toBe("running")

      expect(await sh(id, "mkdir -p /work && echo kept > /work/before.txt && sync && cat /work/before.txt")).toBe(
        "kept\n",
      )
      await sh(
        id,
        "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done' </dev/null >/dev/null 2>&1 &",
      )
      const curl = "curl -sS -o /dev/null -w '%{http_code}' https://api.test/v1/e2e-pause"
      expect(await sh(id, curl)).toBe("200")
      const counted = Number((await sh(id, "cat /tmp/counter")).trim())
      expect(counted).toBeGreaterThan(0)

      const t0 = performance.now()
      const paused = await paws(["pause", id], cli)
      const pauseMs = performance.now() - t0
      expect(paused.code, paused.stderr).toBe(0)
      expect(paused.stdout.trim()).toBe(`${id} paused`)
      const again = await paws(["pause", id], cli)
      expect(again.code).toBe(1)
      expect(again.stderr).toContain(`session ${id} is paused; only a running session can be paused`)
      const exec = await api("POST", `/v1/sessions/${id}/exec`, { command: ["true"] })
      expect(exec.status).toBe(409)

      // The node's only slot is free: another session runs to its end meanwhile.
      const other = await api("POST", "/v1/sessions", { workload: { type: "script", script: "echo meanwhile" } })
      await waitStatus(other.json.sessionId, (s) => s === "completed" || s === "failed")
      expect((await api("GET", `/v1/sessions/${other.json.sessionId}`)).json.result.stdout).toBe("meanwhile\n")

      const rotated = await api("PUT", `/v1/sessions/${id}/credentials`, {
        credentials: { "api.test": { headers: { "x-api-key": "tok-after-rotation" } } },
      })
      expect(rotated.status, rotated.text).toBe(200)

      // The node restarts: the paused session stays paused, and the node reports holding it.
      await node.kill("SIGTERM")
      await waitUntil(
        "control saw the node go",
        () => api("GET", "/v1/nodes"),
        (r) => !r.json?.some((n: any) => n.id === "e2e-pause" && n.status === "ready"),
        60_000,
      )
      node = startNode()
      await nodeUp()
      expect((await api("GET", `/v1/sessions/${id}`)).json.status).toBe("paused")
      await waitUntil(
        "the node reports the paused session",
        () => api("GET", "/v1/nodes"),
        (r) => r.json?.some((n: any) => n.id === "e2e-pause" && n.pausedSessions?.includes(id)),
        30_000,
      )

      const t1 = performance.now()
      const resumed = await paws(["resume", id], cli)
      const resumeMs = performance.now() - t1
      expect(resumed.code, resumed.stderr + node.log().slice(-3000)).toBe(0)
      expect(resumed.stdout.trim()).toBe(`${id} running`)
      expect(await sh(id, "cat /work/before.txt")).toBe("kept\n")
      const countedAfter = Number((await sh(id, "cat /tmp/counter")).trim())
      expect(countedAfter).toBeGreaterThanOrEqual(counted)
      await new Promise((r) => setTimeout(r, 300))
      expect(Number((await sh(id, "cat /tmp/counter")).trim())).toBeGreaterThan(countedAfter)
      expect(await sh(id, curl)).toBe("200")
      const seen = world.received.filter((r) => r.url === "/v1/e2e-pause").map((r) => r.headers["x-api-key"])
      expect(seen).toEqual(["tok-before-rotation", "tok-after-rotation"])
      console.log(`e2e pause ${Math.round(pauseMs)} ms, resume ${Math.round(resumeMs)} ms (CLI round trips)`)

      const cancelled = await api("DELETE", `/v1/sessions/${id}`)
      expect(cancelled.json.status).toBe("cancelled")
      const events = await api("GET", `/v1/sessions/${id}`)
      expect(events.json.status).toBe("cancelled")
    },
    900_000,
  )
})
