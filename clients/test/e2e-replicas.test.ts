// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { TestPostgres } from "../../control/test/TestPostgres.ts"
import { startFailoverBalancer } from "./support/FailoverBalancer.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only (netns, VMs; run under the VM lock): two `paws control` processes on one real PostgreSQL
// behind a TCP balancer, two `paws node` processes (own netns each, warm VM pool) calling home
// through it. 200 sessions are created through both replicas' APIs; replica A is SIGKILLed while
// the queue runs. What ran is counted from the nodes' own logs, not from control.

const sessions = 200
const killAfterCompleted = 60
const terminal = new Set(["completed", "failed", "cancelled", "timeout"])

const scope = Scope.makeUnsafe()
const worlds: Array<Awaited<ReturnType<typeof makeE2eWorld>>> = []
const controls: Record<"a" | "b", { proc: PawsProcess; url: string }> = {} as any
const nodes: Array<PawsProcess> = []
let balancer: Awaited<ReturnType<typeof startFailoverBalancer>> | undefined
let key = ""

const api = async (url: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, body: await res.json() as any }
}

/** Every session a replica lists, through all pages. */
const listAll = async (url: string): Promise<Array<any>> => {
  const all: Array<any> = []
  let cursor: string | null = null
  do {
    const page: any = (await api(url, "GET", `/v1/sessions?limit=200${cursor === null ? "" : `&cursor=${cursor}`}`))
      .body
    all.push(...page.sessions)
    cursor = page.nextCursor
  } while (cursor !== null)
  return all
}

/**
 * The node's own record: `session <id> <status>: <step marks>`, logged once per run as it ends (`interrupted`: its
 * control link dropped). A run may have executed the script once its guest was prepared.
 */
const runsIn = (log: string) =>
  [...log.matchAll(/session ([0-9a-f-]{36}) (completed|failed|cancelled|timeout|interrupted): ([^"\n]*)/g)].map((
    m,
  ) => ({
    id: m[1]!,
    status: m[2]!,
    ranWorkload: /\b(workload|prepared)=/.test(m[3]!),
  }))

beforeAll(async () => {
  const pg = await Effect.runPromise(Layer.buildWithScope(TestPostgres.layer, scope))
  const databaseUrl = await Effect.runPromise(Effect.provideContext(TestPostgres.use((p) => p.freshDatabase), pg))
  worlds.push(await makeE2eWorld(), await makeE2eWorld())
  const dir = worlds[0]!.dir
  const vaultKey = randomBytes(32).toString("base64")
  const ports = { a: await freePort(), b: await freePort() }
  for (const id of ["a", "b"] as const) {
    const proc = startPaws(["control"], {
      PAWS_HOST: "127.0.0.1",
      PAWS_PORT: String(ports[id]),
      PAWS_DATA_DIR: join(dir, `control-${id}`),
      DATABASE_URL: databaseUrl,
      PAWS_VAULT_KEY: vaultKey,
      PAWS_REPLICA_ID: `replica-${id}`,
      PAWS_REPLICA_LEASE_MS: "2000",
      PAWS_NODE_HEARTBEAT_MS: "500",
      PAWS_NODE_LOST_AFTER_MS: "3000",
      PAWS_DISPATCH_INTERVAL_MS: "200",
    })
    controls[id] = { proc, url: `http://127.0.0.1:${ports[id]}` }
    await proc.waitFor(/paws control is serving/, 120_000) // one at a time: the first makes the admin key
  }
  key = readFileSync(join(dir, "control-a", "admin.key"), "utf8").trim()
  balancer = await startFailoverBalancer([ports.a, ports.b])
  for (const [i, world] of worlds.entries()) {
    const nodeId = `replica-node-${i + 1}`
    const token = await api(controls.a.url, "POST", "/v1/nodes/tokens", { name: nodeId, nodeId })
    expect(token.status).toBe(201)
    nodes.push(startPaws(["node"], {
      ...world.nodeEnv,
      PAWS_DATA_DIR: join(world.dir, "node"),
      PAWS_CONTROL_URL: `http://127.0.0.1:${balancer.port}`,
      PAWS_NODE_TOKEN: token.body.token,
      PAWS_NODE_ID: nodeId,
      PAWS_NODE_MAX_VMS: "2",
      PAWS_NODE_LOST_AFTER_MS: "3000",
      PAWS_NODE_DEFAULT_SNAPSHOT: "1",
      PAWS_NODE_VM_POOL: "2",
    }))
  }
  // Both replicas see both nodes ready with the default snapshot built (each node's link is held by whichever
  // replica the balancer chose). On a fresh machine that includes building the guest image first.
  const withDefault = (n: any) =>
    n.status === "ready" && (n.snapshots ?? []).some((s: any) => s.name === "default" && s.status === "ready")
  for (const c of [controls.a, controls.b]) {
    await waitUntil(
      "both nodes ready with the default snapshot",
      () => api(c.url, "GET", "/v1/nodes").then((r) => r.body.filter(withDefault).length),
      (n) => n === 2,
      600_000,
      250,
    )
  }
}, 800_000)

afterAll(async () => {
  for (const n of nodes) await n.kill("SIGTERM")
  for (const c of Object.values(controls)) await c.proc.kill("SIGKILL")
  await balancer?.close()
  for (const w of worlds) await w.close()
  await Effect.runPromise(Scope.close(scope, Exit.void))
}, 120_000)

describe("two control replicas on one PostgreSQL, real nodes", () => {
  it(
    "200 sessions over both replicas' APIs, one replica SIGKILLed mid-queue: none lost (all completed: the " +
      "survivor takes over those running through the dead replica), none run twice (nodes' logs), both " +
      "replicas (then the survivor) list the same sessions",
    async () => {
      const started = Date.now()
      const created: Array<{ id: string; n: number }> = []
      for (let batch = 0; batch < sessions; batch += 20) {
        const replies = await Promise.all(Array.from({ length: 20 }, async (_, j) => {
          const n = batch + j
          const via = n % 2 === 0 ? controls.a : controls.b
          const r = await api(via.url, "POST", "/v1/sessions", {
            workload: { type: "script", script: `echo ran-${n}` },
          })
          expect(r.status, JSON.stringify(r.body)).toBe(202)
          return { id: r.body.sessionId as string, n }
        }))
        created.push(...replies)
      }
      const ids = created.map((c) => c.id).sort()

      // Both replicas list the same 200 sessions while the queue runs.
      const idsOf = (list: Array<any>) => list.map((s) => s.id as string).sort()
      expect(idsOf(await listAll(controls.a.url))).toEqual(ids)
      expect(idsOf(await listAll(controls.b.url))).toEqual(ids)

      const survivor = controls.b.url
      const done = () => listAll(survivor).then((l) => l.filter((s) => terminal.has(s.status)).length)
      const atKill = await waitUntil("queue under way", done, (n) => n >= killAfterCompleted, 600_000, 200)
      await controls.a.proc.kill("SIGKILL")
      expect(atKill).toBeLessThan(sessions) // mid-queue

      const final = await waitUntil(
        "every session finished on the survivor",
        () => listAll(survivor),
        (l) => l.length === sessions && l.every((s) => terminal.has(s.status)),
        900_000,
        500,
      )
      expect(idsOf(final)).toEqual(ids)

      // The nodes' own records of what they ran.
      const runs = nodes.flatMap((n) => runsIn(n.log()))
      const workloadRuns = new Map<string, number>()
      for (const r of runs) if (r.ranWorkload) workloadRuns.set(r.id, (workloadRuns.get(r.id) ?? 0) + 1)
      const twice = [...workloadRuns].filter(([, count]) => count > 1)
      // Not lost: every session is listed and completed, each run once by a node. Those running through the
      // killed replica when it died went on running on their node, and the survivor took them over when the
      // node called home to it (AttachSession); claims the node never started were re-queued and run once.
      const completedOnNode = new Set(runs.filter((r) => r.status === "completed").map((r) => r.id))
      const byId = new Map(final.map((s) => [s.id as string, s]))
      const notCompleted = final.filter((s) => s.status !== "completed")
      /** What a session went through (its status events, each with its reason), for the report. */
      const timeline = async (id: string) => {
        const res = await fetch(`${survivor}/v1/sessions/${id}/events`, { headers: { authorization: `Bearer ${key}` } })
        return [...(await res.text()).matchAll(/"status":"([a-z_]+)"(?:[^}]*"reason":"([^"]*)")?/g)]
          .map((m) => m[2] === undefined ? m[1] : `${m[1]}(${m[2]})`)
      }
      const notCompletedTimelines = await Promise.all(notCompleted.map((s) => timeline(s.id)))
      console.log(JSON.stringify({
        sessions,
        finishedAtKill: atKill,
        completed: sessions - notCompleted.length,
        failedInFlight: notCompleted.map((s, i) => ({
          reason: s.reason,
          timeline: notCompletedTimelines[i],
          nodeRuns: runs.filter((r) => r.id === s.id).map((r) => r.status),
          nodeLines: nodes.flatMap((n) => n.log().split("\n").filter((l) => l.includes(s.id))),
        })),
        runsPerNode: nodes.map((n) => runsIn(n.log()).length),
        ms: Date.now() - started,
      }))
      expect(twice, "sessions whose script ran more than once").toEqual([])
      expect(notCompleted.map((s) => `${s.status} ${s.reason}`), "sessions not completed").toEqual([])
      for (const { id, n } of created) {
        const s = byId.get(id)
        expect(workloadRuns.get(id), `session ${n} ran once on a node`).toBe(1)
        expect(completedOnNode.has(id), `session ${n} completed on a node`).toBe(true)
        expect(s.result.stdout).toBe(`ran-${n}\n`)
      }
      // Both nodes took part, and the one whose replica died called home again through the balancer, to the survivor.
      for (const n of nodes) expect(runsIn(n.log()).length).toBeGreaterThan(0)
      const ready = await waitUntil(
        "both nodes live on the survivor",
        () => api(survivor, "GET", "/v1/nodes").then((r) => r.body.map((n: any) => `${n.id}:${n.status}`).sort()),
        (ns) => ns.length === 2 && ns.every((n: string) => n.endsWith(":ready")),
        30_000,
      )
      expect(ready).toEqual(["replica-node-1:ready", "replica-node-2:ready"])
    },
    1_500_000,
  )
})
