// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import { Reactivity } from "effect/reactivity"
import { registerFakeNode } from "./FakeNode.ts"
import { call, postgresBackend, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

const leaseMs = 1500

/** A statement against the shared PostgreSQL, as an operator (or a crashed replica's leftovers) would leave it. */
const sqlOn = (url: string, text: string) =>
  Effect.scoped(Effect.gen(function* () {
    const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
    return yield* sql.unsafe(text)
  })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

/** Two control replicas on one PostgreSQL, each with its own in-process node (real NodeRpcs contract). */
describe("control replicas on one PostgreSQL", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect(
      "a replica starting never touches another's live sessions; one that stops or whose lease lapses has its " +
        "claimed sessions re-queued (run once, elsewhere) and its running ones failed",
      () =>
        Effect.gen(function* () {
          const store = yield* (yield* TestDatabase).fresh
          const url = store.databaseUrl!
          // The in-process fake nodes hold nothing once their caller is gone: no grace to wait for a takeover
          // (taking over from real nodes: clients/test/e2e-replicas.test.ts).
          const env = (id: string) => ({
            PAWS_REPLICA_ID: id,
            PAWS_REPLICA_LEASE_MS: String(leaseMs),
            PAWS_ADOPT_GRACE_MS: "0",
          })

          const scopeA = yield* Scope.make()
          const a = yield* startControl(store, env("replica-a")).pipe(Scope.provide(scopeA))
          yield* registerFakeNode(a.registry, { id: "n-a", maxConcurrent: 2 }).pipe(Scope.provide(scopeA))
          const onA = yield* call(a, "POST", "/v1/sessions", { body: script("hang on a") })
          yield* waitForSession(a, onA.body.sessionId, (s) => s.status === "running")

          yield* Effect.scoped(Effect.gen(function* () {
            // B starts while A runs a session: before leases, every start failed all running sessions.
            const b = yield* startControl(store, env("replica-b"))
            const nodeB = yield* registerFakeNode(b.registry, { id: "n-b", maxConcurrent: 4 })
            yield* Effect.sleep(leaseMs * 2) // several of B's recovery sweeps
            const stillA = (yield* call(b, "GET", `/v1/sessions/${onA.body.sessionId}`)).body
            assert.strictEqual(stillA.status, "running", JSON.stringify(stillA))
            const replicas = yield* sqlOn(url, "SELECT id FROM control_replicas ORDER BY id")
            assert.deepStrictEqual(replicas.map((r: any) => r.id), ["replica-a", "replica-b"])

            // Both replicas list the same sessions.
            const fromA = (yield* call(a, "GET", "/v1/sessions")).body.sessions.map((s: any) => s.id)
            const fromB = (yield* call(b, "GET", "/v1/sessions")).body.sessions.map((s: any) => s.id)
            assert.deepStrictEqual(fromA, fromB)

            // A stops cleanly: it gives up its lease, so B fails A's running session at once (its node stopped it).
            yield* Scope.close(scopeA, Exit.void)
            const failed = yield* waitForSession(b, onA.body.sessionId, (s) => s.status !== "running", 10_000)
            assert.strictEqual(failed.status, "failed")
            assert.strictEqual(failed.reason, "control_restarted")

            // A crashed replica leaves a lapsed lease and sessions it claimed: a fresh claim re-queues and runs on B,
            // once; a running one fails. Its lease row is stale by far more than the lease.
            // (B's node is drained meanwhile, so the rows are the ghost's before B could claim them.)
            assert.strictEqual((yield* call(b, "PUT", "/v1/nodes/drained/n-b")).status, 200)
            const claimed = yield* call(b, "POST", "/v1/sessions", { body: script("echo claimed by the ghost") })
            const running = yield* call(b, "POST", "/v1/sessions", { body: script("hang ghost") })
            yield* sqlOn(url, "INSERT INTO control_replicas (id, seen_at) VALUES ('ghost', now() - interval '1 hour')")
            yield* sqlOn(
              url,
              `UPDATE sessions SET status = 'starting', replica = 'ghost', node = 'n-gone'
               WHERE id = '${claimed.body.sessionId}' AND status = 'pending'`,
            )
            yield* sqlOn(
              url,
              `UPDATE sessions SET status = 'running', replica = 'ghost', node = 'n-gone'
               WHERE id = '${running.body.sessionId}' AND status = 'pending'`,
            )
            assert.strictEqual((yield* call(b, "DELETE", "/v1/nodes/drained/n-b")).status, 200)
            const ran = yield* waitForSession(b, claimed.body.sessionId, (s) => s.status === "completed", 10_000)
            assert.strictEqual(ran.node, "n-b")
            const lost = yield* waitForSession(b, running.body.sessionId, (s) => s.status === "failed", 10_000)
            assert.strictEqual(lost.reason, "control_restarted")
            assert.strictEqual(nodeB.dispatched.filter((d) => d.sessionId === claimed.body.sessionId).length, 1)

            // B's own running session is never its own orphan.
            const onB = yield* call(b, "POST", "/v1/sessions", { body: script("hang on b") })
            yield* waitForSession(b, onB.body.sessionId, (s) => s.status === "running")
            yield* Effect.sleep(leaseMs * 2)
            assert.strictEqual((yield* call(b, "GET", `/v1/sessions/${onB.body.sessionId}`)).body.status, "running")
          }))
        }),
    )

    it.effect(
      "a replica whose session another replica took over does not fail it when the node ends its stream",
      () =>
        Effect.scoped(Effect.gen(function* () {
          const store = yield* (yield* TestDatabase).fresh
          const url = store.databaseUrl!
          const a = yield* startControl(store, {
            PAWS_REPLICA_ID: "replica-a",
            PAWS_REPLICA_LEASE_MS: String(leaseMs),
            PAWS_ADOPT_GRACE_MS: "0",
          })
          yield* registerFakeNode(a.registry, { id: "n-a", maxConcurrent: 2 })
          // Control: a stream that ends without an outcome fails a session this replica still follows.
          const own = yield* call(a, "POST", "/v1/sessions", { body: script("dropstream 300") })
          const dropped = yield* waitForSession(a, own.body.sessionId, (s) => s.status === "failed")
          assert.strictEqual(dropped.reason, "node_ended_stream_early")

          // Taken over meanwhile (A's lease lapsed, say, and live replica B adopted it): the node then ends A's stream.
          const taken = yield* call(a, "POST", "/v1/sessions", { body: script("dropstream 1500") })
          yield* waitForSession(a, taken.body.sessionId, (s) => s.status === "running")
          yield* sqlOn(
            url,
            "INSERT INTO control_replicas (id, seen_at) VALUES ('replica-b', now() + interval '1 hour')",
          )
          yield* sqlOn(url, `UPDATE sessions SET replica = 'replica-b' WHERE id = '${taken.body.sessionId}'`)
          yield* Effect.sleep(2500) // past the end of A's stream
          const after = (yield* call(a, "GET", `/v1/sessions/${taken.body.sessionId}`)).body
          assert.strictEqual(after.status, "running", JSON.stringify(after))
        })),
    )

    it.effect(
      "every replica lists every replica's nodes, places against them, and can drain them; the node's own replica " +
        "runs what the other accepted",
      () =>
        Effect.scoped(Effect.gen(function* () {
          const store = yield* (yield* TestDatabase).fresh
          const env = (id: string) => ({
            PAWS_REPLICA_ID: id,
            PAWS_REPLICA_LEASE_MS: String(leaseMs),
            PAWS_NODE_HEARTBEAT_MS: "300",
          })
          const a = yield* startControl(store, env("replica-a"))
          const b = yield* startControl(store, env("replica-b"))
          const nodeA = yield* registerFakeNode(a.registry, {
            id: "n-on-a",
            maxConcurrent: 2,
            snapshots: [{ name: "default", status: "ready" }, { name: "only-a", status: "ready" }],
          })
          yield* registerFakeNode(b.registry, {
            id: "n-on-b",
            maxConcurrent: 2,
            snapshots: [{ name: "default", status: "ready" }],
          })
          const listed = (control: typeof a) =>
            Effect.map(call(control, "GET", "/v1/nodes"), (r) => r.body.map((n: any) => `${n.id}:${n.status}`))
          const both = ["n-on-a:ready", "n-on-b:ready"]
          const deadline = Date.now() + 10_000
          const seenByBoth = Effect.map(
            Effect.all([listed(a), listed(b)]),
            ([x, y]) => JSON.stringify(x) === JSON.stringify(both) && JSON.stringify(y) === JSON.stringify(both),
          )
          while (!(yield* seenByBoth) && Date.now() < deadline) yield* Effect.sleep(100)
          assert.deepStrictEqual(yield* listed(b), both)
          assert.deepStrictEqual(yield* listed(a), both)

          // Created on B for a snapshot only A's node holds: accepted (not a 409), run by A on its node.
          const onlyA = yield* call(b, "POST", "/v1/sessions", { body: script("echo only a", { snapshot: "only-a" }) })
          assert.strictEqual(onlyA.status, 202, onlyA.text)
          const ran = yield* waitForSession(b, onlyA.body.sessionId, (s) => s.status === "completed", 10_000)
          assert.strictEqual(ran.node, "n-on-a")
          const missing = yield* call(b, "POST", "/v1/sessions", { body: script("echo", { snapshot: "nowhere" }) })
          assert.strictEqual(missing.status, 409, missing.text)

          // Drained through B: A stops placing sessions on its node once its drain cache (2 s) has moved on.
          assert.strictEqual((yield* call(b, "PUT", "/v1/nodes/drained/n-on-a")).status, 200)
          yield* Effect.sleep(2500)
          const before = nodeA.dispatched.length
          const queued = yield* call(b, "POST", "/v1/sessions", { body: script("echo wait", { snapshot: "only-a" }) })
          assert.strictEqual(queued.status, 202, queued.text)
          yield* Effect.sleep(1500) // many dispatch passes
          assert.strictEqual(nodeA.dispatched.length, before)
          assert.strictEqual((yield* call(a, "GET", `/v1/sessions/${queued.body.sessionId}`)).body.status, "pending")
          assert.strictEqual((yield* call(a, "DELETE", "/v1/nodes/drained/n-on-a")).status, 200)
          yield* waitForSession(a, queued.body.sessionId, (s) => s.status === "completed", 10_000)

          // A node that leaves A (lost there) and calls home to B shows as live on both, not as A's lost entry.
          const linkOnA = yield* Scope.make()
          yield* registerFakeNode(a.registry, { id: "n-moving", maxConcurrent: 1 }).pipe(Scope.provide(linkOnA))
          yield* Scope.close(linkOnA, Exit.void)
          yield* registerFakeNode(b.registry, { id: "n-moving", maxConcurrent: 1 })
          const moving = (control: typeof a) =>
            Effect.map(listed(control), (ids: Array<string>) => ids.find((n) => n.startsWith("n-moving:")))
          const until = Date.now() + 10_000
          while ((yield* moving(a)) !== "n-moving:ready" && Date.now() < until) yield* Effect.sleep(100)
          assert.strictEqual(yield* moving(a), "n-moving:ready")
          yield* Effect.sleep(1000) // A keeps publishing its lost entry: it must not replace B's live one
          assert.strictEqual(yield* moving(a), "n-moving:ready")
          assert.strictEqual(yield* moving(b), "n-moving:ready")
        })),
    )
  })
})
