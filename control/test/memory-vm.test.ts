// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { Scope } from "effect"
import type { SessionSpec } from "@paws/core"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ImageBuilder } from "../../node/src/image/ImageBuilder.ts"
import { labelledProcesses } from "../../node/src/network/Reconciler.ts"
import { exeOf, exitOf, freePort, nodeProcess } from "../../node/test/support/CanaryWorld.ts"
import { mirrorIn } from "../../node/test/support/MirrorWorld.ts"
import { makeNetns } from "../../node/test/support/Netns.ts"
import { testDataDir, testImageLayer } from "../../node/test/support/TestImage.ts"
import { call, type ControlHandle, pgliteBackend, waitForSession } from "./harness.ts"
import { memoryControl } from "./support/MemoryControl.ts"

/** Who the tests' sessions act as (control passes a principal; daemons have their own). */
const memoryPrincipal = { keyId: "memory-test", scopes: ["sessions:write" as const], project: "default", limits: {} }

const realKey = `sk-ant-REAL-${crypto.randomUUID()}`
const nodeToken = `memory-${crypto.randomUUID()}`
const daemon = "mem-test"
const mark = `gen1-${crypto.randomUUID()}`
const prompt = `remember ${crypto.randomUUID()}`

/**
 * `paws node` as its own process in its own netns, where a fake Anthropic API (streaming SSE,
 * own test CA) answers as api.anthropic.com; control dials it at `port`.
 */
const startNode = (id: string, port: number, pool: string, extra: Record<string, string> = {}): Effect.Effect<
  {
    readonly netns: string
    readonly stop: Effect.Effect<void>
    readonly apiKeys: () => Array<unknown>
    readonly log: () => string
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const netns = yield* makeNetns("mem")
    const api = yield* mirrorIn(netns, tmpdir(), undefined)
    const node = yield* nodeProcess({
      PAWS_NODE_ID: id,
      PAWS_NODE_NETNS: netns,
      PAWS_NODE_TOKEN: nodeToken,
      PAWS_NODE_HOST: "127.0.0.1",
      PAWS_NODE_PORT: String(port),
      PAWS_NODE_POOL: pool,
      PAWS_NODE_MAX_VMS: "1",
      PAWS_DATA_DIR: testDataDir,
      PAWS_NODE_PROXY_UPSTREAM: JSON.stringify({
        caBundlePem: api.caPem,
        resolve: { "api.anthropic.com": { address: "127.0.0.1", port: api.port } },
        allowPrivateUpstreams: true,
      }),
      ...extra,
    })
    const stop = Effect.gen(function* () {
      node.child.kill("SIGTERM")
      yield* exitOf(node.child)
    })
    return { netns, stop, apiKeys: () => api.received.map((r) => r.apiKey), log: node.log }
  })

const waitFor = <A>(what: string, effect: Effect.Effect<A>, ok: (a: A) => boolean, ms = 120_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (true) {
      const a = yield* effect
      if (ok(a)) return a
      if (Date.now() > deadline) return yield* Effect.die(new Error(`${what}: last ${JSON.stringify(a)}`))
      yield* Effect.sleep(100)
    }
  })

/** The session reached a terminal status (its result is stored just before that). */
const ended = (s: any) => s.completedAt !== null

const readyNodes = (control: ControlHandle) =>
  Effect.map(
    call(control, "GET", "/v1/nodes"),
    (r) => (r.body as Array<any>).filter((n) => n.status === "ready").map((n) => n.id as string),
  )

/** Reads the session's live event stream until an output frame contains `text`. */
const outputSeen = (control: ControlHandle, id: string, text: string) =>
  Effect.promise(async () => {
    const res = await fetch(`${control.url}/v1/sessions/${id}/events`, {
      headers: { authorization: `Bearer ${control.adminKey}` },
      signal: AbortSignal.timeout(120_000),
    })
    const reader = res.body!.getReader()
    let seen = ""
    while (!seen.includes(text)) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`stream ended before ${text}: ${seen.slice(-2000)}`)
      seen += new TextDecoder().decode(value)
    }
    await reader.cancel()
  })

const llmCall = [
  `curl -sS -N https://api.anthropic.com/v1/messages -H 'content-type: application/json'`,
  `-d '{"model":"claude-test","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"${prompt}"}]}'`,
].join(" ")

const memorySpec = (script: string): SessionSpec => ({
  snapshot: "default",
  workload: { type: "script", script },
  resources: { vcpus: 1, memoryMB: 256 },
  timeoutMs: 120_000,
  network: {
    allowOut: ["api.anthropic.com"],
    credentials: { "api.anthropic.com": { headers: { "x-api-key": realKey } } },
  },
})

describe("daemon memory: /state and LLM history across invocations (real VMs, two node processes)", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 900_000 })((it) => {
    it.effect(
      "state written on node A survives a SIGKILLed run and is read on node B; LLM history is recorded without the key",
      () =>
        Effect.gen(function* () {
          yield* ImageBuilder.use((b) => b.build()).pipe(Effect.provide(testImageLayer()), Effect.orDie)
          const [portA, portB] = [yield* freePort, yield* freePort]
          const c = yield* memoryControl({
            PAWS_NODES: `ws://127.0.0.1:${portA}/rpc,ws://127.0.0.1:${portB}/rpc`,
            PAWS_NODES_TOKEN: nodeToken,
            PAWS_NODE_HEARTBEAT_MS: "300",
            PAWS_NODE_LOST_AFTER_MS: "2000",
            PAWS_STATE_MAX_BYTES: "4096",
          })
          const control = c.handle
          const memory = { key: `daemon:${daemon}`, recordLlmHistory: true, keepGenerations: 2 }
          const invoke = (script: string) =>
            Effect.map(
              c.sessions.create(memorySpec(script), memoryPrincipal, undefined, { memory }),
              (a) => a.sessionId,
            )

          // The public body cannot carry a memory key.
          const smuggled = yield* call(control, "POST", "/v1/sessions", {
            body: { workload: { type: "script", script: "true" }, memory: { key: `daemon:${daemon}` } },
          })
          assert.strictEqual(smuggled.status, 400, smuggled.text)

          // Invocation 1 on node A: empty /state, no history yet; writes state and talks to the LLM.
          const first = yield* Effect.scoped(Effect.gen(function* () {
            const nodeA = yield* startNode("mem-a", portA, "172.16.5.0/24")
            yield* waitFor("node A ready", readyNodes(control), (ids) => ids.includes("mem-a"))
            const id1 = yield* invoke([
              `[ -d /state ] && [ -z "$(ls -A /state)" ] && echo state-empty`,
              `echo "history-bytes=$(wc -c < /input/history.jsonl)"`,
              `mkdir -p /state/sub && echo ${mark} > /state/sub/value`,
              llmCall,
            ].join("\n"))
            const s1 = yield* waitForSession(control, id1, ended, 300_000)
            assert.strictEqual(s1.status, "completed", JSON.stringify(s1.result))
            assert.strictEqual(s1.node, "mem-a")
            assert.include(s1.result.stdout, "state-empty")
            assert.include(s1.result.stdout, "history-bytes=0")
            assert.include(s1.result.stdout, "message_stop", "the SSE stream reached the guest")
            assert.deepStrictEqual(nodeA.apiKeys(), [realKey], "the proxy injected the real key upstream")
            assert.deepStrictEqual((yield* c.memory.generations(memory.key)).map((g) => g.generation), [1])

            const gens = () => Effect.map(c.memory.generations(memory.key), (gs) => gs.map((g) => g.generation))
            // A nonzero exit saves nothing; nor does a /state over PAWS_STATE_MAX_BYTES (the run still completes).
            const failing = yield* invoke(`echo failed-run > /state/sub/value; exit 3`)
            const sf = yield* waitForSession(control, failing, ended, 300_000)
            assert.deepInclude(sf, { status: "failed", reason: "exit code 3" })
            const big = yield* invoke(`head -c 65536 /dev/urandom > /state/big; echo big > /state/sub/value`)
            const sb = yield* waitForSession(control, big, ended, 300_000)
            assert.strictEqual(sb.status, "completed", JSON.stringify(sb.result))
            assert.match(sb.result.error, /\/state not saved \(\d+ bytes packed, over the 4096 byte cap\)/)
            assert.deepStrictEqual(yield* gens(), [1])

            // Invocation 2 on node A: changes /state, then its VM is SIGKILLed mid-run.
            const id2 = yield* invoke(
              `echo changed > /state/sub/value; echo killed > /state/killed; echo READY; sleep 600`,
            )
            yield* outputSeen(control, id2, "READY")
            const vms = (yield* labelledProcesses(Option.some(nodeA.netns)))
              .filter((p) => p.sessionId === id2 && exeOf(p.pid).includes("qemu"))
            assert.strictEqual(vms.length, 1, "one QEMU for invocation 2")
            process.kill(vms[0]!.pid, "SIGKILL")
            const s2 = yield* waitForSession(control, id2, ended, 60_000)
            assert.strictEqual(s2.status, "failed", JSON.stringify(s2))
            assert.deepStrictEqual(yield* gens(), [1], "a killed run saves nothing")
            yield* nodeA.stop
            return s1
          }))
          yield* waitFor("node A gone", readyNodes(control), (ids) => !ids.includes("mem-a"))

          // History through the API (it is served for defined daemons): the exchange is there, bodies only, and no
          // credential anywhere.
          for (const name of [daemon, "never-ran"]) {
            const defined = yield* call(control, "POST", "/v1/daemons", {
              body: { name, workload: { type: "script", script: "true" } },
            })
            assert.strictEqual(defined.status, 201, defined.text)
          }
          const history = yield* call(control, "GET", `/v1/daemons/${daemon}/history`)
          assert.strictEqual(history.status, 200, history.text)
          const entries = history.body.entries as Array<any>
          assert.strictEqual(entries.length, 1, history.text)
          assert.deepInclude(entries[0], {
            host: "api.anthropic.com",
            method: "POST",
            path: "/v1/messages",
            status: 200,
          })
          assert.strictEqual(entries[0].sessionId, first.id)
          assert.include(entries[0].request, prompt)
          assert.include(entries[0].response, "event: message_stop")
          assert.include(entries[0].response, `"text_delta","text":"ok"`)
          assert.notInclude(history.text, realKey)
          assert.notInclude(history.text, "x-api-key")
          const none = yield* call(control, "GET", "/v1/daemons/never-ran/history")
          assert.deepStrictEqual(none.body, { daemon: "never-ran", entries: [] })
          // At rest: sealed with the vault key, the prompt and the state nowhere in clear.
          const rows = yield* c.sql<{ sealed: string }>`SELECT sealed FROM memory_history
            UNION ALL SELECT sealed FROM memory_states`.pipe(Effect.orDie)
          assert.isAtLeast(rows.length, 2)
          for (const r of rows) {
            assert.match(r.sealed, /^v1\./)
            assert.notInclude(r.sealed, prompt)
          }

          // Invocation 3 on node B, a separate process that never saw invocation 1. Node A cold-booted its
          // guests (files over SSH); node B restores the default snapshot (files through the guest agent).
          yield* Effect.scoped(Effect.gen(function* () {
            const snapshotDir = yield* Effect.acquireRelease(
              Effect.sync(() => mkdtempSync(join(tmpdir(), "paws-mem-snapshots-"))),
              (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })),
            )
            const nodeB = yield* startNode("mem-b", portB, "172.16.6.0/24", {
              PAWS_NODE_DEFAULT_SNAPSHOT: "1",
              PAWS_SNAPSHOT_DIR: snapshotDir,
            })
            yield* waitFor("node B ready", readyNodes(control), (ids) => ids.includes("mem-b"))
            yield* waitFor(
              "node B's default snapshot built",
              call(control, "GET", "/v1/snapshots/default"),
              (r) => r.status === 200 && r.body.status === "ready",
              300_000,
            )
            const id3 = yield* invoke([
              `echo "value=$(cat /state/sub/value)"`,
              `[ -e /state/killed ] && echo killed-present || echo killed-absent`,
              `cat /input/history.jsonl`,
              `echo gen3 > /state/sub/value`,
            ].join("\n"))
            const s3 = yield* waitForSession(control, id3, ended, 300_000)
            assert.strictEqual(s3.status, "completed", JSON.stringify(s3.result))
            assert.strictEqual(s3.node, "mem-b")
            const timings = nodeB.log().split("\n").find((l) => l.includes(`session ${id3} completed`))
            assert.isDefined(timings, nodeB.log().slice(-3000))
            assert.include(timings, "prepared(agent)", "restored from the snapshot, prepared through the agent")
            assert.include(s3.result.stdout, `value=${mark}`)
            assert.include(s3.result.stdout, "killed-absent")
            const lines = s3.result.stdout.split("\n").filter((l: string) => l.startsWith("{"))
            assert.strictEqual(lines.length, 1, s3.result.stdout)
            const line = JSON.parse(lines[0])
            assert.include(line.request, prompt)
            assert.strictEqual(line.sessionId, first.id)
            assert.notInclude(s3.result.stdout, realKey)
            assert.deepStrictEqual((yield* c.memory.generations(memory.key)).map((g) => g.generation), [2, 1])

            // A session without a memory key gets neither state nor history.
            const plain = yield* call(control, "POST", "/v1/sessions", {
              body: {
                workload: { type: "script", script: `ls -A /state 2>&1; ls /input 2>&1; echo plain-done` },
                resources: { vcpus: 1, memoryMB: 256 },
              },
            })
            const s4 = yield* waitForSession(control, plain.body.sessionId, ended, 300_000)
            assert.strictEqual(s4.status, "completed", JSON.stringify(s4.result))
            assert.notInclude(s4.result.stdout, "sub")
            assert.notInclude(s4.result.stdout, "history.jsonl")
            assert.include(s4.result.stdout, "plain-done")
            yield* nodeB.stop
          }))
        }),
      900_000,
    )
  })
})
