// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { call, pgliteBackend, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

/** Real control over HTTP; in-process nodes speaking the real NodeRpcs contract with chosen labels and snapshots. */
describe("placement: snapshots, node selectors, drain", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("a session runs only on a node that holds its snapshot ready and carries its selected labels", () =>
      Effect.scoped(Effect.gen(function* () {
        const control = yield* startControl(yield* (yield* TestDatabase).fresh)
        const plain = yield* registerFakeNode(control.registry, {
          id: "n-plain",
          maxConcurrent: 4,
          labels: { zone: "a" },
          snapshots: [{ name: "default", status: "ready" }, { name: "tools", status: "building" }],
        })
        const gpu = yield* registerFakeNode(control.registry, {
          id: "n-gpu",
          maxConcurrent: 1,
          labels: { zone: "a", gpu: "a100" },
          snapshots: [{ name: "default", status: "ready" }, { name: "claude-agent", status: "ready" }],
        })

        // Agent snapshot: only n-gpu holds it, though n-plain has more free slots.
        const agent = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo agent", { snapshot: "claude-agent" }),
        })
        assert.strictEqual(agent.status, 202, agent.text)
        const ran = yield* waitForSession(control, agent.body.sessionId, (s) => s.status === "completed")
        assert.strictEqual(ran.node, "n-gpu")

        // Selector: gpu=a100 only matches n-gpu; zone=a alone prefers the node with most free slots.
        const picky = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo picky", { nodeSelector: { gpu: "a100" } }),
        })
        assert.strictEqual(picky.status, 202, picky.text)
        const pickyDone = yield* waitForSession(control, picky.body.sessionId, (s) => s.status === "completed")
        assert.strictEqual(pickyDone.node, "n-gpu")
        assert.deepStrictEqual(pickyDone.spec.nodeSelector, { gpu: "a100" })
        const zone = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo z", { nodeSelector: { zone: "a" } }),
        })
        assert.strictEqual(
          (yield* waitForSession(control, zone.body.sessionId, (s) => s.status === "completed")).node,
          "n-plain",
        )

        // Building on a node is not ready: the session waits (accepted, not refused) and runs nowhere yet.
        const tools = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo tools", { snapshot: "tools" }),
        })
        assert.strictEqual(tools.status, 202, tools.text)
        // A session behind it that fits runs: the waiting one does not hold up the queue.
        const after = yield* call(control, "POST", "/v1/sessions", { body: script("echo after") })
        yield* waitForSession(control, after.body.sessionId, (s) => s.status === "completed")
        const waiting = yield* call(control, "GET", `/v1/sessions/${tools.body.sessionId}`)
        assert.strictEqual(waiting.body.status, "pending")
        assert.isFalse(plain.dispatched.some((d) => d.snapshot === "tools"))
        assert.isTrue(gpu.dispatched.every((d) => d.snapshot !== "tools"))

        // A selector no node carries yet: queued (such a node may join), not refused.
        const future = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo later", { nodeSelector: { pool: "big" } }),
        })
        assert.strictEqual(future.status, 202, future.text)
        const big = yield* registerFakeNode(control.registry, {
          id: "n-big",
          maxConcurrent: 1,
          labels: { pool: "big" },
          snapshots: [{ name: "default", status: "ready" }],
        })
        const joined = yield* waitForSession(control, future.body.sessionId, (s) => s.status === "completed")
        assert.strictEqual(joined.node, "n-big")
        assert.strictEqual(big.dispatched.length, 1)
      })))

    it.effect("a snapshot no node holds is a 409 naming it and the fix; bad selectors are 400s naming the field", () =>
      Effect.scoped(Effect.gen(function* () {
        const control = yield* startControl(yield* (yield* TestDatabase).fresh)
        // No node at all: nodes may still connect, so it queues.
        const early = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo", { snapshot: "claude-agent" }),
        })
        assert.strictEqual(early.status, 202, early.text)
        yield* registerFakeNode(control.registry, {
          id: "n-only",
          maxConcurrent: 2,
          snapshots: [{ name: "default", status: "ready" }],
        })
        const refused = yield* call(control, "POST", "/v1/sessions", {
          body: script("echo", { snapshot: "claude-agent" }),
        })
        assert.strictEqual(refused.status, 409, refused.text)
        assert.strictEqual(refused.body._tag, "SnapshotUnavailable")
        assert.strictEqual(refused.body.snapshot, "claude-agent")
        assert.include(refused.body.message, `no node holds snapshot "claude-agent"`)
        assert.include(refused.body.message, "PAWS_NODE_SNAPSHOTS")

        for (const [selector, field] of [[{ "bad key!": "x" }, "nodeSelector"], [{ gpu: "not ok!" }, "nodeSelector"]]) {
          const bad = yield* call(control, "POST", "/v1/sessions", { body: script("echo", { nodeSelector: selector }) })
          assert.strictEqual(bad.status, 400, bad.text)
          assert.include(bad.text, field as string)
        }
      })))

    it.effect("a drained node finishes its running sessions, takes no new ones, and stays drained across a restart", () =>
      Effect.gen(function* () {
        const store = yield* (yield* TestDatabase).fresh
        const held = yield* Effect.scoped(Effect.gen(function* () {
          const control = yield* startControl(store)
          const a = yield* registerFakeNode(control.registry, { id: "n-a", maxConcurrent: 2 })
          const running = yield* call(control, "POST", "/v1/sessions", { body: script("hang") })
          yield* waitForSession(control, running.body.sessionId, (s) => s.status === "running")
          assert.strictEqual(a.dispatched.length, 1)

          const drained = yield* call(control, "PUT", "/v1/nodes/drained/n-a")
          assert.strictEqual(drained.status, 200, drained.text)
          assert.strictEqual(drained.body.status, "draining")
          const listed = yield* call(control, "GET", "/v1/nodes")
          assert.strictEqual(listed.body.find((n: any) => n.id === "n-a").status, "draining")

          const queued = yield* call(control, "POST", "/v1/sessions", { body: script("echo queued") })
          assert.strictEqual(queued.status, 202)
          yield* Effect.sleep(800) // several dispatch passes (200 ms each in tests)
          assert.strictEqual(a.dispatched.length, 1, "no new session on a draining node")
          assert.strictEqual(
            (yield* call(control, "GET", `/v1/sessions/${running.body.sessionId}`)).body.status,
            "running",
          )
          assert.strictEqual(
            (yield* call(control, "GET", `/v1/sessions/${queued.body.sessionId}`)).body.status,
            "pending",
          )

          // Only admin may drain; unknown nodes are 404s naming the id.
          const unknown = yield* call(control, "PUT", "/v1/nodes/drained/n-nope")
          assert.strictEqual(unknown.status, 404)
          assert.include(unknown.body.message, "n-nope")
          const key = yield* call(control, "POST", "/v1/keys", { body: { name: "ro", scopes: ["read"] } })
          const forbidden = yield* call(control, "PUT", "/v1/nodes/drained/n-a", { key: key.body.secret })
          assert.strictEqual(forbidden.status, 403)
          return queued.body.sessionId as string
        }))

        // Restarted control, the node reconnects: still drained; undrain lets the queued session run.
        yield* Effect.scoped(Effect.gen(function* () {
          const control = yield* startControl(store)
          const a = yield* registerFakeNode(control.registry, { id: "n-a", maxConcurrent: 2 })
          const listed = yield* call(control, "GET", "/v1/nodes")
          assert.strictEqual(listed.body.find((n: any) => n.id === "n-a").status, "draining")
          yield* Effect.sleep(800)
          assert.strictEqual(a.dispatched.length, 0)
          const undrained = yield* call(control, "DELETE", "/v1/nodes/drained/n-a")
          assert.strictEqual(undrained.status, 200, undrained.text)
          assert.strictEqual(undrained.body.status, "ready")
          const done = yield* waitForSession(control, held, (s) => s.status === "completed")
          assert.strictEqual(done.node, "n-a")
        }))
      }))
  })
})
