// deno-lint-ignore-file no-explicit-any -- the soak reads loosely typed JSON replies
import { join } from "node:path"
import { freePort, type makeE2eWorld, type PawsProcess, startPaws } from "../support/E2eWorld.ts"
import { waitUntil } from "../support/WaitUntil.ts"
import { runRootOf } from "./SoakProbe.ts"

type E2eWorld = Awaited<ReturnType<typeof makeE2eWorld>>

/** The stack under soak: a control and a node process in the world's netns, and the API calls the soak makes. */
export const makeSoakStack = async (world: E2eWorld) => {
  const nodeDir = join(world.dir, "node")
  const runRoot = runRootOf(nodeDir)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let control: PawsProcess | undefined
  let node: PawsProcess | undefined
  let key = ""
  let token = ""

  const startControl = async () => {
    control = startPaws(["control"], {
      PAWS_HOST: "127.0.0.1",
      PAWS_PORT: String(port),
      PAWS_DATA_DIR: join(world.dir, "control"),
      PAWS_NODE_HEARTBEAT_MS: "500",
      PAWS_NODE_LOST_AFTER_MS: "3000",
      PAWS_DISPATCH_INTERVAL_MS: "200",
    })
    await control.waitFor(/paws control is serving/, 120_000)
  }
  const startNode = async () => {
    node = startPaws(["node"], {
      ...world.nodeEnv,
      PAWS_DATA_DIR: nodeDir,
      PAWS_CONTROL_URL: url,
      PAWS_NODE_TOKEN: token,
      PAWS_NODE_ID: "soak-node",
      PAWS_NODE_MAX_VMS: "2",
      PAWS_NODE_LOST_AFTER_MS: "3000",
    })
    await waitUntil("node registered", nodeIds, (ids) => ids.includes("soak-node"), 120_000)
  }
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: await res.json() as any }
  }
  /** Connected nodes (a lost one stays listed with status lost). */
  const nodeIds = () =>
    api("GET", "/v1/nodes").then((r) =>
      (r.body as Array<{ id: string; status: string }>).filter((n) => n.status !== "lost").map((n) => n.id)
    )
  const session = (id: string) => api("GET", `/v1/sessions/${id}`).then((r) => r.body)
  const submit = async (script: string, timeoutMs?: number) => {
    const r = await api("POST", "/v1/sessions", {
      workload: { type: "script", script },
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    })
    if (r.status !== 202) throw new Error(`submit: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body.sessionId as string
  }
  const terminal = (s: any) => ["completed", "failed", "timeout", "cancelled"].includes(s.status)
  const reach = (id: string, status: string, ms = 90_000) =>
    waitUntil(`${id} ${status}`, () => session(id), (s) => s.status === status || terminal(s), ms)
  const finished = (id: string, ms = 120_000) => waitUntil(`${id} finished`, () => session(id), terminal, ms)
  const cancel = (id: string) => api("DELETE", `/v1/sessions/${id}`)
  const cancelNow = async (id: string) => {
    const r = await cancel(id)
    if (r.status !== 200) throw new Error(`cancel ${id}: ${r.status} ${JSON.stringify(r.body)}`)
  }

  const running = async (id: string) => {
    const s = await reach(id, "running")
    if (s.status !== "running") throw new Error(`${id} ended before running: ${JSON.stringify(s)}`)
  }

  return {
    world,
    url,
    runRoot,
    startControl,
    startNode,
    control: () => control,
    node: () => node,
    setCredentials: (apiKey: string, nodeToken: string) => {
      key = apiKey
      token = nodeToken
    },
    nodeIds,
    session,
    submit,
    terminal,
    reach,
    finished,
    cancelNow,
    running,
  }
}
export type SoakStack = Awaited<ReturnType<typeof makeSoakStack>>
