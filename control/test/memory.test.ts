// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import {
  LiveSessionError,
  type LlmExchange,
  newSessionId,
  type NodeId,
  NodeRpcs,
  type NodeSessionEvent,
  NodeSessionNotFound,
  type SessionDispatch,
  type SessionSpec,
  workloadText,
} from "@paws/core"
import { Effect, Layer, Stream } from "effect"
import { RpcTest } from "effect/rpc"
import type { NodeRegistry } from "../src/NodeRegistry.ts"
import { backends, call, readEvents, waitForSession } from "./harness.ts"
import { memoryControl } from "./support/MemoryControl.ts"

/** Who the tests' sessions act as (control passes a principal; daemons have their own). */
const memoryPrincipal = { keyId: "memory-test", scopes: ["sessions:write" as const], project: "default", limits: {} }

const now = () => new Date().toISOString()

const exchange = (n: number, pad = 0): LlmExchange => ({
  time: now(),
  host: "api.anthropic.com",
  method: "POST",
  path: "/v1/messages",
  status: 200,
  request: `{"n":${n}}${" ".repeat(pad)}`,
  response: `event: message_stop\ndata: {"n":${n}}\n\n`,
  truncated: false,
})

/**
 * A node in-process (the real NodeRpcs client and server through RpcTest) that reports what a
 * memory session's node would: the workload script `state:TEXT llm:N` sends TEXT as the saved
 * /state and N exchanges (`pad` spaces in each request body).
 */
const memoryNode = (registry: NodeRegistry["Service"], dispatched: Array<SessionDispatch>) =>
  Effect.gen(function* () {
    const info = {
      id: "n-mem" as NodeId,
      name: "n-mem",
      capacity: { maxConcurrent: 4, running: 0, available: 4 },
      status: "ready" as const,
      labels: {},
    }
    const run = (d: SessionDispatch): Stream.Stream<NodeSessionEvent> => {
      dispatched.push(d)
      const script = workloadText(d.workload).text
      const state = /state:(\S+)/.exec(script)?.[1]
      const llm = Number(/llm:(\d+)/.exec(script)?.[1] ?? 0)
      const pad = Number(/pad:(\d+)/.exec(script)?.[1] ?? 0)
      return Stream.fromIterable<NodeSessionEvent>([
        { _tag: "status", status: "running", at: now() },
        ...Array.from({ length: llm }, (_, i): NodeSessionEvent => ({ _tag: "llm", exchange: exchange(i, pad) })),
        ...(state === undefined ? [] : [{ _tag: "state", tar: Buffer.from(state).toString("base64") } as const]),
        { _tag: "result", result: { exitCode: 0, stdout: "", stderr: "", output: null, truncated: false } },
        { _tag: "status", status: "completed", at: now() },
      ])
    }
    const handlers = NodeRpcs.toLayer({
      RunSession: run,
      AttachSession: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      CancelSession: () => Effect.void,
      PauseSession: ({ sessionId }) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      NodeStatus: () => Effect.succeed(info),
      BuildSnapshot: () => Stream.empty,
      ListSnapshots: () => Effect.succeed([]),
      DeleteSnapshot: () => Effect.succeed({ removed: false }),
      DecideEgress: () => Effect.succeed({ delivered: false }),
      ExecInSession: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      ReadSessionFile: ({ sessionId }) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      WriteSessionFile: ({ sessionId }) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      ForwardToPort: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      OpenPortSocket: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      SendPortSocket: () => Effect.fail(new LiveSessionError({ reason: "guest", message: "memory node" })),
      OpenShell: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "memory node" })),
      ShellInput: () => Effect.fail(new LiveSessionError({ reason: "guest", message: "memory node" })),
    })
    const client = yield* RpcTest.makeClient(NodeRpcs).pipe(Effect.provide(handlers as Layer.Layer<any>))
    yield* registry.register({ info, client: client as never }).pipe(Effect.orDie)
  })

const spec = (script: string): SessionSpec => ({ workload: { type: "script", script } })

/** History is served per daemon: the names the tests read must be defined daemons (an unknown one is a 404). */
const defineDaemons = (control: Parameters<typeof call>[0], names: ReadonlyArray<string>) =>
  Effect.forEach(names, (name) =>
    Effect.map(
      call(control, "POST", "/v1/daemons", { body: { name, workload: { type: "script", script: "true" } } }),
      (r) => assert.strictEqual(r.status, 201, r.text),
    ))

for (const backend of backends) {
  describe(`session memory in control (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 120_000 })((it) => {
      it.effect("state generations move from session to session; history is capped, kept in order, sealed", () =>
        Effect.gen(function* () {
          const c = yield* memoryControl({
            PAWS_LLM_HISTORY_MAX_ENTRIES: "4",
            PAWS_LLM_HISTORY_INPUT_MAX_BYTES: "2048",
          })
          const dispatched: Array<SessionDispatch> = []
          yield* memoryNode(c.registry, dispatched)
          const control = c.handle
          yield* defineDaemons(control, ["keeper", "quiet", "thief"])
          const memory = { key: "daemon:keeper", keepGenerations: 2, recordLlmHistory: true }
          const runOne = (script: string, m: typeof memory | null = memory) =>
            Effect.gen(function* () {
              const accepted = yield* c.sessions.create(
                spec(script),
                memoryPrincipal,
                undefined,
                m === null ? undefined : { memory: m },
              )
              const s = yield* waitForSession(control, accepted.sessionId, (s) => s.completedAt !== null)
              assert.strictEqual(s.status, "completed", JSON.stringify(s))
              return { id: accepted.sessionId, dispatch: dispatched.find((d) => d.sessionId === accepted.sessionId)! }
            })

          const first = yield* runOne("state:one llm:2")
          assert.deepInclude(first.dispatch.memory, { recordLlmHistory: true, stateMaxBytes: 8 * 1024 * 1024 })
          assert.isUndefined(first.dispatch.memory?.state, "the first invocation starts with an empty /state")
          assert.isUndefined(first.dispatch.memory?.history)
          const second = yield* runOne("state:two llm:3")
          assert.strictEqual(Buffer.from(second.dispatch.memory!.state!, "base64").toString(), "one")
          const third = yield* runOne("state:three")
          assert.strictEqual(Buffer.from(third.dispatch.memory!.state!, "base64").toString(), "two")
          assert.deepStrictEqual((yield* c.memory.generations(memory.key)).map((g) => g.generation), [3, 2])
          // History: 5 recorded, the newest 4 kept, oldest first; the next dispatch gets them as JSON lines.
          const history = yield* call(control, "GET", "/v1/daemons/keeper/history")
          assert.strictEqual(history.status, 200, history.text)
          assert.deepStrictEqual(
            history.body.entries.map((e: any) => [e.sessionId, e.request]),
            [[first.id, `{"n":1}`], [second.id, `{"n":0}`], [second.id, `{"n":1}`], [second.id, `{"n":2}`]],
          )
          const lines = third.dispatch.memory!.history!.trimEnd().split("\n").map((l) => JSON.parse(l))
          assert.deepStrictEqual(lines.map((l) => l.request), [`{"n":1}`, `{"n":0}`, `{"n":1}`, `{"n":2}`])
          assert.strictEqual((yield* call(control, "GET", "/v1/daemons/keeper/history?limit=1")).body.entries.length, 1)

          // The input file is cut to PAWS_LLM_HISTORY_INPUT_MAX_BYTES, dropping the oldest first.
          yield* runOne("llm:4 pad:600")
          const fourth = yield* runOne("true")
          const cut = fourth.dispatch.memory!.history!
          assert.isAtMost(Buffer.byteLength(cut), 2048)
          const kept = cut.trimEnd().split("\n").map((l) => JSON.parse(l).request.trim())
          assert.isAtLeast(kept.length, 1)
          assert.isBelow(kept.length, 4, "the input cap dropped some")
          assert.deepStrictEqual(kept, [`{"n":0}`, `{"n":1}`, `{"n":2}`, `{"n":3}`].slice(4 - kept.length))

          // Memory events never become session events, and recordLlmHistory: false records none.
          const events = yield* readEvents(control, second.id)
          assert.deepStrictEqual([...new Set(events.frames.map((f) => f.event))].sort(), ["result", "status"])
          yield* runOne("state:quiet llm:2", { key: "daemon:quiet", keepGenerations: 2, recordLlmHistory: false })
          assert.deepStrictEqual((yield* call(control, "GET", "/v1/daemons/quiet/history")).body.entries, [])
          assert.deepStrictEqual((yield* c.memory.generations("daemon:quiet")).map((g) => g.generation), [1])

          // A node reporting state or history for a session without a memory key stores nothing.
          const before = yield* c.sql<{ n: number }>`SELECT
            (SELECT count(*) FROM memory_states) + (SELECT count(*) FROM memory_history) AS n`.pipe(Effect.orDie)
          yield* runOne("state:stray llm:3", null)
          const after = yield* c.sql<{ n: number }>`SELECT
            (SELECT count(*) FROM memory_states) + (SELECT count(*) FROM memory_history) AS n`.pipe(Effect.orDie)
          assert.strictEqual(Number(after[0]!.n), Number(before[0]!.n))
          assert.isUndefined(dispatched.at(-1)!.memory)

          // Sealed per key: rows moved to another key do not open there (503, never a 500 or the plaintext).
          yield* c.sql`UPDATE memory_history SET key = 'daemon:thief' WHERE key = 'daemon:keeper'`.pipe(Effect.orDie)
          const stolen = yield* call(control, "GET", "/v1/daemons/thief/history")
          assert.strictEqual(stolen.status, 503, stolen.text)
          assert.notInclude(stolen.text, `{\\"n\\"`)
          // A state that does not open fails the session that needed it, before any node runs it.
          yield* c.sql`UPDATE memory_states SET key = 'daemon:thief' WHERE key = 'daemon:keeper'`.pipe(Effect.orDie)
          const count = dispatched.length
          const robbed = yield* c.sessions.create(spec("true"), memoryPrincipal, undefined, {
            memory: { key: "daemon:thief" },
          })
          const failed = yield* waitForSession(control, robbed.sessionId, (s) => s.completedAt !== null)
          assert.deepInclude(failed, { status: "failed", reason: "memory_unreadable" })
          assert.strictEqual(dispatched.length, count)
        }))

      it.effect("history past PAWS_LLM_HISTORY_RETENTION_DAYS is neither served nor handed on, and is deleted", () =>
        Effect.gen(function* () {
          const c = yield* memoryControl({ PAWS_LLM_HISTORY_RETENTION_DAYS: "7" })
          const memory = { key: "daemon:aging", recordLlmHistory: true }
          const session = newSessionId()
          for (const n of [0, 1]) yield* c.memory.recordExchange(memory, session, exchange(n))
          yield* c.sql`UPDATE memory_history SET created_at = now() - interval '8 days'
            WHERE id = (SELECT min(id) FROM memory_history WHERE key = 'daemon:aging')`.pipe(Effect.orDie)
          yield* defineDaemons(c.handle, ["aging"])
          const served = yield* call(c.handle, "GET", "/v1/daemons/aging/history")
          assert.deepStrictEqual(served.body.entries.map((e: any) => e.request), [`{"n":1}`])
          const handed = (yield* c.memory.dispatchFor(memory)).history!.trimEnd().split("\n")
          assert.deepStrictEqual(handed.map((l) => JSON.parse(l).request), [`{"n":1}`])
          yield* c.memory.recordExchange(memory, session, exchange(2))
          const rows = yield* c.sql<{ n: number }>`SELECT count(*) AS n FROM memory_history`.pipe(Effect.orDie)
          assert.strictEqual(Number(rows[0]!.n), 2, "the expired row was deleted on the next write")
        }))

      it.effect("the history route: a bad name or limit is a 400 naming it; reading needs a key", () =>
        Effect.gen(function* () {
          const c = yield* memoryControl({})
          const control = c.handle
          yield* defineDaemons(control, ["ok"])
          const unknown = yield* call(control, "GET", "/v1/daemons/nobody/history")
          assert.strictEqual(unknown.status, 404, unknown.text)
          assert.strictEqual(unknown.body._tag, "DaemonNotFound")
          const badName = yield* call(control, "GET", "/v1/daemons/-bad/history")
          assert.strictEqual(badName.status, 400, badName.text)
          assert.include(badName.text, "name")
          const badLimit = yield* call(control, "GET", "/v1/daemons/ok/history?limit=0")
          assert.strictEqual(badLimit.status, 400, badLimit.text)
          assert.include(badLimit.text, "limit")
          assert.strictEqual((yield* call(control, "GET", "/v1/daemons/ok/history", { key: null })).status, 401)
          const reader = yield* call(control, "POST", "/v1/keys", { body: { name: "r", scopes: ["read"] } })
          const read = yield* call(control, "GET", "/v1/daemons/ok/history", { key: reader.body.secret })
          assert.deepStrictEqual(read.body, { daemon: "ok", entries: [] })
        }))
    })
  })
}
