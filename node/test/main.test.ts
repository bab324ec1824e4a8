import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Stream } from "effect"
import { newSessionId, type NodeSessionEvent } from "@paws/core"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { labelledProcesses } from "../src/network/Reconciler.ts"
import { makeNetns } from "./support/Netns.ts"
import { nodeClient } from "./support/NodeClient.ts"
import { testDataDir } from "./support/TestImage.ts"
import { leftovers } from "./support/TestNode.ts"
import { linksIn, sh, tablesIn } from "./support/TestNet.ts"

const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))

const freePort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
)

const exitOf = (child: ChildProcess) =>
  Effect.callback<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

describe("paws node (main)", () => {
  it.live("refuses to run without root and says so", () =>
    Effect.gen(function* () {
      let stderr = ""
      const child = spawn(process.execPath, [main], { uid: 65534, gid: 65534, stdio: ["ignore", "ignore", "pipe"] })
      child.stderr!.on("data", (d) => (stderr += d))
      assert.strictEqual(yield* exitOf(child), 1)
      assert.include(stderr, "must run as root")
    }))

  it.live("refuses an empty PAWS_NODE_TOKEN before touching anything, after warning about unsafe settings", () =>
    Effect.gen(function* () {
      let log = ""
      const node = spawn(process.execPath, [main], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          PATH: process.env.PATH,
          PAWS_NODE_TOKEN: "",
          // Never dialled or entered: the start is refused before reconcile, links or VMs.
          PAWS_NODE_NETNS: "paws-test-never-created",
          PAWS_CONTROL_URL: "http://10.255.255.1:4000",
          PAWS_NODE_PROXY_UPSTREAM: JSON.stringify({
            allowPrivateUpstreams: true,
            resolve: { "api.test": { address: "127.0.0.1", port: 1 } },
          }),
          PAWS_DATA_DIR: testDataDir,
          PAWS_NODE_DEFAULT_SNAPSHOT: "0",
        },
      })
      node.stdout!.on("data", (d) => (log += d))
      node.stderr!.on("data", (d) => (log += d))
      yield* Effect.addFinalizer(() => Effect.sync(() => node.kill("SIGKILL")))
      const code = yield* exitOf(node).pipe(Effect.timeout(20_000))
      assert.notStrictEqual(code, 0, log)
      assert.include(log, "PAWS_NODE_TOKEN is empty", log)
      assert.include(log, "PAWS_CONTROL_URL http://10.255.255.1:4000 is not https", log)
      assert.include(log, "PAWS_NODE_PROXY_UPSTREAM is set: TEST-ONLY", log)
      assert.include(log, "allowPrivateUpstreams", log)
      assert.include(log, "resolve (names pinned to addresses: api.test)", log)
      assert.notInclude(log, "reconciling", "nothing ran before the refusal")
    }).pipe(Effect.scoped))

  it.live("reconciles leftovers on start, serves RunSession over authenticated WebSocket RPC, tears sessions down on SIGTERM", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* makeNetns("main")
      // Leftovers of a previous life: a TAP, a table, a labelled process.
      const dead = "0190f000-0000-7000-8000-00000000dead"
      yield* sh(["ip", "-n", ns, "tuntap", "add", "dev", "pw00000000dead", "mode", "tap"])
      yield* sh(["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "paws_0190f00000007000800000000000dead"])
      const orphan = spawn("ip", ["netns", "exec", ns, "sleep", "60"], {
        stdio: "ignore",
        env: { ...process.env, PAWS_SESSION_ID: dead },
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => orphan.kill("SIGKILL")))

      const port = yield* freePort
      const token = `tok-${crypto.randomUUID()}`
      let log = ""
      const node = spawn(process.execPath, [main], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          PATH: process.env.PATH,
          PAWS_NODE_NETNS: ns,
          PAWS_NODE_TOKEN: token,
          PAWS_NODE_HOST: "127.0.0.1",
          PAWS_NODE_PORT: String(port),
          PAWS_NODE_POOL: "172.16.2.0/24",
          PAWS_DATA_DIR: testDataDir,
          PAWS_NODE_DEFAULT_SNAPSHOT: "0", // the shared data dir: no background build
        },
      })
      node.stdout!.on("data", (d) => (log += d))
      node.stderr!.on("data", (d) => (log += d))
      yield* Effect.addFinalizer(() => Effect.sync(() => node.kill("SIGKILL")))
      yield* Effect.promise(async () => {
        for (let i = 0; i < 200 && !log.includes("Listening"); i++) await new Promise((r) => setTimeout(r, 50))
      })
      assert.include(log, "Listening", log)
      assert.include(log, "deleted orphan TAP pw00000000dead")
      assert.include(log, "deleted orphan nft table inet paws_0190f00000007000800000000000dead")
      assert.include(log, `killed orphan process ${orphan.pid}`)
      assert.notInclude(yield* linksIn(ns), "pw00000000dead")
      assert.deepStrictEqual(yield* tablesIn(ns), [])

      const unauthorized = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/rpc`))
      assert.strictEqual(unauthorized.status, 401)

      const client = yield* nodeClient(`ws://127.0.0.1:${port}/rpc`, token)
      const status = yield* client.NodeStatus()
      assert.strictEqual(status.capacity.running, 0)
      assert.isAbove(status.capacity.maxConcurrent, 0)
      const events: Array<NodeSessionEvent> = Array.from(
        yield* Stream.runCollect(client.RunSession({
          sessionId: newSessionId(),
          snapshot: "default",
          workload: { type: "script", script: "echo via rpc" },
          resources: { vcpus: 1, memoryMB: 256 },
          timeoutMs: 60_000,
          network: { allowOut: [], credentials: {} },
        })),
      )
      const result = events.find((e) => e._tag === "result")
      assert.strictEqual(result?._tag === "result" ? result.result.stdout : undefined, "via rpc\n", log)
      assert.deepStrictEqual(events.at(-1)?._tag === "status" ? events.at(-1) : undefined, events.at(-1))

      // A node stopped mid-session (SIGTERM) tears the session down and reports it ended, with why.
      const running = yield* Deferred.make<void>()
      const last: { status?: string; reason?: string } = {}
      const stopped = yield* client.RunSession({
        sessionId: newSessionId(),
        snapshot: "default",
        workload: { type: "script", script: "echo up; sleep 300" },
        resources: { vcpus: 1, memoryMB: 256 },
        timeoutMs: 600_000,
        network: { allowOut: [], credentials: {} },
      }).pipe(
        Stream.runForEach((e) => {
          if (e._tag === "status") Object.assign(last, { status: e.status, reason: e.reason })
          return e._tag === "output" ? Deferred.succeed(running, undefined) : Effect.void
        }),
        Effect.ignore,
        Effect.forkChild,
      )
      yield* Deferred.await(running)
      assert.strictEqual((yield* leftovers(ns)).taps.length, 1)
      node.kill("SIGTERM")
      yield* exitOf(node)
      yield* Fiber.join(stopped)
      assert.strictEqual(last.status, "failed", log)
      assert.match(last.reason ?? "", /^node .* shut down$/)
      assert.deepStrictEqual(yield* leftovers(ns), { taps: [], tables: [], processes: [] })
      assert.deepStrictEqual(yield* labelledProcesses(Option.some(ns)), [])
    })))
})
