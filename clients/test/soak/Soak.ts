// deno-lint-ignore-file no-explicit-any -- the soak reads loosely typed JSON replies
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { ImageBuilder } from "../../../node/src/image/ImageBuilder.ts"
import { testImageLayer } from "../../../node/test/support/TestImage.ts"
import { paws } from "../support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "../support/E2eWorld.ts"
import { waitUntil } from "../support/WaitUntil.ts"
import { allKinds, exclusiveKinds, type Kind, makePlan, prng } from "./SoakPlan.ts"
import { cutSsh, heldBy, leakCount, type Leaks, leaks, proxyOf, qemuOf, runRootOf } from "./SoakProbe.ts"

export interface SoakOptions {
  readonly sessions: number
  readonly maxMinutes: number
  readonly seed: number
  readonly log: (line: string) => void
}

export interface Checked {
  readonly id: string
  readonly kind: string
  readonly status: string
  readonly problem?: string
}

export interface SoakReport {
  readonly seed: number
  readonly sessions: number
  readonly byOutcome: Record<string, number>
  readonly byKind: Record<string, number>
  readonly mismatches: ReadonlyArray<Checked>
  readonly heldAfterEnd: ReadonlyArray<string>
  readonly leaks: Leaks
  readonly leakTotal: number
  readonly stoppedEarly: boolean
  readonly error?: string
  readonly ms: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sleeper = "echo up; sleep 300"

export const runSoak = async (options: SoakOptions): Promise<SoakReport> => {
  const t0 = Date.now()
  const deadline = t0 + options.maxMinutes * 60_000
  const random = prng(options.seed)
  const log = options.log
  await Effect.runPromise(ImageBuilder.use((b) => b.build()).pipe(Effect.provide(testImageLayer()), Effect.orDie))
  const world = await makeE2eWorld()
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

  const checked: Array<Checked> = []
  const heldAfterEnd: Array<string> = []
  const expect = async (id: string, kind: string, want: (s: any) => string | undefined, released = true) => {
    const s = await finished(id)
    const problem = want(s)
    checked.push({ id, kind, status: s.status, ...(problem === undefined ? {} : { problem }) })
    log(`  ${kind} ${id}: ${s.status}${s.reason ? ` (${String(s.reason).slice(0, 120)})` : ""}`)
    if (problem !== undefined) log(`MISMATCH ${kind} ${id}: ${problem} (got ${JSON.stringify(s).slice(0, 400)})`)
    if (released) await released_(id, kind)
  }
  // A terminal session has released everything on its node (the node reports the end after teardown).
  const released_ = async (id: string, kind: string, ms = 15_000) => {
    const held = await waitUntil(
      `${id} released`,
      () => heldBy(world.netns, runRoot, id),
      (h) => h.length === 0,
      ms,
    )
      .catch(async () => await heldBy(world.netns, runRoot, id))
    if (held.length > 0) {
      heldAfterEnd.push(`${kind} ${id}: ${held.join(",")}`)
      log(`LEAK ${kind} ${id}: still holds ${held.join(",")}`)
    }
  }
  const is = (status: string, extra?: (s: any) => string | undefined) => (s: any) =>
    s.status !== status ? `want ${status}` : extra?.(s)
  const running = async (id: string) => {
    const s = await reach(id, "running")
    if (s.status !== "running") throw new Error(`${id} ended before running: ${JSON.stringify(s)}`)
  }
  const pause = () => sleep(Math.floor(random() * 1500))

  const shared = async (kind: Kind): Promise<void> => {
    switch (kind) {
      case "normal": {
        const code = random() < 0.75 ? 0 : 1 + Math.floor(random() * 5)
        const tag = Math.floor(random() * 1e9)
        const id = await submit(`echo soak-${tag}; exit ${code}`)
        return expect(
          id,
          kind,
          (s) =>
            s.status !== (code === 0 ? "completed" : "failed")
              ? `want ${code === 0 ? "completed" : "failed"} (exit ${code})`
              : s.result?.exitCode !== code
              ? `want exit code ${code}`
              : s.result?.stdout !== `soak-${tag}\n`
              ? "wrong stdout"
              : undefined,
        )
      }
      case "qemu-kill":
      case "proxy-kill":
      case "ssh-cut": {
        const id = await submit(sleeper)
        await running(id)
        await pause()
        if (kind === "ssh-cut") {
          const cut = await cutSsh(world.netns, id)
          if (cut === 0) log(`note: ss -K found no SSH socket of ${id}`)
        } else {
          const pid = kind === "qemu-kill" ? await qemuOf(world.netns, id) : await proxyOf(world.netns, id)
          if (pid === undefined) throw new Error(`${kind}: no process of ${id}`)
          process.kill(pid, "SIGKILL")
        }
        return expect(id, kind, is("failed"))
      }
      case "timeout": {
        const timeoutMs = 1000 + Math.floor(random() * 2000)
        const id = await submit(sleeper, timeoutMs)
        return expect(id, kind, is("timeout"))
      }
      case "cancel-running": {
        const id = await submit(sleeper)
        await running(id)
        await pause()
        await cancelNow(id)
        return expect(id, kind, is("cancelled"))
      }
      case "cancel-starting": {
        // Starting lasts from restore to the guest's SSH (>= ~0.7 s); polled every 20 ms it is seen.
        // Should it be missed anyway, that session counts as cancel-running and another one tries.
        for (let attempt = 0; attempt < 3; attempt++) {
          const id = await submit(sleeper)
          const s = await waitUntil(`${id} starting`, () => session(id), (s) => s.status !== "pending", 90_000, 20)
          await cancelNow(id)
          if (s.status === "starting") return expect(id, kind, is("cancelled"))
          log(`note: ${id} was ${s.status} when first seen after pending`)
          await expect(id, "cancel-running", is("cancelled"))
        }
        throw new Error("cancel-starting: never saw a session in starting")
      }
    }
  }

  const exclusive = async (kind: Kind): Promise<void> => {
    switch (kind) {
      case "cancel-pending": {
        // Both VM slots busy: the third session stays in the queue until it is cancelled there.
        const busy = [await submit(sleeper), await submit(sleeper)]
        for (const b of busy) await running(b)
        const queued = await submit("echo never")
        await sleep(500)
        const before = await session(queued)
        if (before.status !== "pending") throw new Error(`queued session is ${before.status}`)
        await cancelNow(queued)
        await expect(queued, "cancel-pending", is("cancelled"))
        for (const b of busy) {
          await cancelNow(b)
          await expect(b, "cancel-running", is("cancelled"))
        }
        return
      }
      case "node-kill": {
        const id = await submit(sleeper)
        await running(id)
        await pause()
        await node!.kill("SIGKILL")
        await expect(
          id,
          kind,
          is("failed", (s) => (s.reason === "node_lost" ? undefined : "want reason node_lost")),
          false,
        )
        await waitUntil("node unregistered", nodeIds, (ids) => ids.length === 0, 20_000)
        // Queued while no node is there; runs once the restarted node has reconciled.
        const queued = await submit("echo after-restart")
        await sleep(300)
        const q = await session(queued)
        if (q.status !== "pending") throw new Error(`queued with no node: ${q.status}`)
        await startNode()
        await released_(id, kind)
        await expect(
          queued,
          "queued-over-node-restart",
          (s) =>
            s.status !== "completed" || s.result?.stdout !== "after-restart\n"
              ? "want completed after-restart"
              : undefined,
        )
        return
      }
      case "control-restart": {
        const busy = [await submit(sleeper), await submit(sleeper)]
        for (const b of busy) await running(b)
        const queued = await submit("echo queued")
        await control!.kill("SIGTERM")
        // Cut off from control, the node stops the sessions control can no longer track.
        for (const b of busy) await released_(b, kind, 40_000)
        await startControl()
        for (const b of busy) await expect(b, kind, is("failed"))
        await expect(
          queued,
          "queued-over-control-restart",
          (s) => s.status !== "completed" || s.result?.stdout !== "queued\n" ? "want completed queued" : undefined,
        )
        return
      }
    }
  }

  const plan = makePlan(options.sessions, random)
  let stoppedEarly = false
  let error: string | undefined
  try {
    await startControl()
    key = readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim()
    const created = await paws(["nodes", "token", "create", "--name", "soak"], {
      PAWS_URL: url,
      PAWS_API_KEY: key,
      PAWS_CONFIG: join(world.dir, "none.json"),
    })
    if (created.code !== 0) throw new Error(`node token: ${created.stderr}`)
    token = created.stdout.trim()
    await startNode()
    log(`soak: seed ${options.seed}, target ${options.sessions} sessions, cap ${options.maxMinutes} min`)
    let i = 0
    while (i < plan.length && (checked.length < options.sessions || i < allKinds)) {
      if (Date.now() > deadline) {
        stoppedEarly = true
        log(`soak: time cap reached after ${checked.length} sessions`)
        break
      }
      const kind = plan[i++]!
      if ((exclusiveKinds as ReadonlyArray<string>).includes(kind)) {
        await exclusive(kind)
      } else {
        const next = plan[i]
        const pair: Array<Kind> = [kind]
        if (next !== undefined && !(exclusiveKinds as ReadonlyArray<string>).includes(next)) pair.push(plan[i++]!)
        await Promise.all(pair.map(shared))
      }
      log(
        `soak: ${checked.length} sessions, ${checked.filter((c) => c.problem).length} mismatches, ${
          Math.round((Date.now() - t0) / 1000)
        } s`,
      )
    }
  } catch (e) {
    error = (e as Error).stack ?? String(e)
    log(`soak: aborted: ${error}`)
  } finally {
    // Stop everything, then count what is left: nothing may remain, not even the warm pool.
    await node?.kill("SIGTERM")
    await control?.kill("SIGTERM")
  }
  const left = await waitUntil("teardown", () => leaks(world.netns, runRoot), (l) => leakCount(l) === 0, 10_000)
    .catch(() => leaks(world.netns, runRoot))
  await world.close()
  const count = (key: (c: Checked) => string) =>
    checked.reduce<Record<string, number>>((acc, c) => ((acc[key(c)] = (acc[key(c)] ?? 0) + 1), acc), {})
  return {
    seed: options.seed,
    sessions: checked.length,
    byOutcome: count((c) => c.status),
    byKind: count((c) => c.kind),
    mismatches: checked.filter((c) => c.problem !== undefined),
    heldAfterEnd,
    leaks: left,
    leakTotal: leakCount(left),
    stoppedEarly,
    ...(error === undefined ? {} : { error }),
    ms: Date.now() - t0,
  }
}
