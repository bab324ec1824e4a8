import { assert, describe, it } from "@effect/vitest"
import type { NodeId, NodeInfo } from "@paws/core"
import { ConfigProvider, Effect, Exit, Layer, References, Scope } from "effect"
import { type NodeClient, NodeRegistry } from "../src/NodeRegistry.ts"
import { QueueSignal } from "../src/QueueSignal.ts"

const info = (id: string, lastSeenAt: string): NodeInfo => ({
  id: id as NodeId,
  name: id,
  capacity: { maxConcurrent: 4, running: 2, available: 2 },
  status: "ready",
  labels: {},
  lastSeenAt,
})

// Registration never calls the client: distinct objects are enough to tell connections apart.
const client = () => ({}) as NodeClient

const registry = (retentionMs: number) =>
  NodeRegistry.layer.pipe(
    Layer.provide(QueueSignal.layer),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
      PAWS_NODE_LOST_RETENTION_MS: String(retentionMs),
    }))),
    Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Error")),
  )

/** Registers `node` until the returned scope is closed (its connection dropping). */
const connect = (node: NodeInfo) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const entry = { info: node, client: client() }
    yield* (yield* NodeRegistry).register(entry).pipe(Scope.provide(scope))
    return { entry, drop: Scope.close(scope, Exit.void) }
  })

describe("NodeRegistry", () => {
  it.live("a dropped node is listed as lost with its last-seen time, never dispatchable, and ready again on return", () =>
    Effect.gen(function* () {
      const nodes = yield* NodeRegistry
      const seen = "2026-01-02T03:04:05.000Z"
      const a = yield* connect(info("n-a", seen))
      yield* connect(info("n-b", new Date().toISOString()))
      assert.deepStrictEqual((yield* nodes.all).map((n) => [n.id, n.status]), [["n-a", "ready"], ["n-b", "ready"]])

      yield* a.drop
      assert.deepStrictEqual((yield* nodes.list).map((e) => e.info.id), ["n-b"], "only connected nodes dispatch")
      assert.isUndefined(yield* nodes.get("n-a"))
      const lost = (yield* nodes.all).find((n) => n.id === "n-a")!
      assert.deepStrictEqual(lost, {
        ...info("n-a", seen),
        status: "lost",
        capacity: { maxConcurrent: 4, running: 0, available: 0 },
      })

      const back = yield* connect(info("n-a", new Date().toISOString()))
      assert.deepStrictEqual((yield* nodes.all).map((n) => [n.id, n.status]), [["n-a", "ready"], ["n-b", "ready"]])
      assert.strictEqual((yield* nodes.get("n-a"))?.client, back.entry.client)
    }).pipe(Effect.provide(registry(60_000))))

  it.live("a second link claiming a connected node's id is refused; the first stays until it drops", () =>
    Effect.gen(function* () {
      const nodes = yield* NodeRegistry
      const first = yield* connect(info("n-a", new Date().toISOString()))
      const second = yield* Effect.flip(connect(info("n-a", new Date().toISOString())))
      assert.strictEqual(second._tag, "NodeIdInUse")
      assert.strictEqual((yield* nodes.get("n-a"))?.client, first.entry.client)
      assert.deepStrictEqual((yield* nodes.all).map((n) => n.status), ["ready"])
      yield* first.drop
      assert.deepStrictEqual((yield* nodes.all).map((n) => n.status), ["lost"])
      const back = yield* connect(info("n-a", new Date().toISOString()))
      assert.strictEqual((yield* nodes.get("n-a"))?.client, back.entry.client)
    }).pipe(Effect.provide(registry(60_000))))

  it.live("a lost node is dropped after the retention time, or at once when forgotten", () =>
    Effect.gen(function* () {
      const nodes = yield* NodeRegistry
      const a = yield* connect(info("n-a", new Date().toISOString()))
      const b = yield* connect(info("n-b", new Date().toISOString()))
      const c = yield* connect(info("n-c", new Date().toISOString()))
      yield* a.drop
      yield* b.drop
      yield* nodes.forget("n-b")
      yield* nodes.forget("n-c") // connected: untouched
      assert.deepStrictEqual((yield* nodes.all).map((n) => [n.id, n.status]), [["n-a", "lost"], ["n-c", "ready"]])
      yield* Effect.sleep(700)
      assert.deepStrictEqual((yield* nodes.all).map((n) => [n.id, n.status]), [["n-c", "ready"]])
      yield* c.drop
    }).pipe(Effect.provide(registry(500))))
})
