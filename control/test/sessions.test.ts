// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, readEvents, script, TestControl, waitForSession } from "./harness.ts"

const secret = "sk-test-5b7c0f0e-never-shown"

const withCredentials = (text: string) =>
  script(text, {
    network: {
      allowOut: ["api.example.com", "*.githubusercontent.com"],
      credentials: { "api.example.com": { headers: { "x-api-key": secret, Authorization: `Bearer ${secret}` } } },
    },
  })

for (const backend of backends) {
  describe(`sessions over HTTP (${backend.name})`, () => {
    layer(TestControl.layer({ PAWS_TIMEOUT_GRACE_MS: "300" }).pipe(Layer.provide(backend.layer)), {
      excludeTestServices: true,
      timeout: 120_000,
    })(
      (it) => {
        it.effect("creates, gets, lists and cancels a pending session; credentials stay hidden", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const created = yield* call(control, "POST", "/v1/sessions", { body: withCredentials("echo hi") })
            assert.strictEqual(created.status, 202, created.text)
            assert.strictEqual(created.body.status, "pending")
            const id: string = created.body.sessionId
            assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/)

            const got = yield* call(control, "GET", `/v1/sessions/${id}`)
            assert.strictEqual(got.status, 200)
            assert.deepStrictEqual(got.body.spec.network.credentials, {
              "api.example.com": { headers: ["x-api-key", "Authorization"] },
            })
            assert.strictEqual(got.body.spec.timeoutMs, 300_000, "default timeout applied")
            assert.deepStrictEqual(got.body.spec.resources, { vcpus: 1, memoryMB: 256 })
            assert.notInclude(got.text, secret)

            const listed = yield* call(control, "GET", "/v1/sessions?status=pending")
            assert.strictEqual(listed.status, 200)
            assert.include(listed.body.sessions.map((s: any) => s.id), id)
            assert.notInclude(listed.text, secret)

            const cancelled = yield* call(control, "DELETE", `/v1/sessions/${id}`)
            assert.strictEqual(cancelled.status, 200, cancelled.text)
            assert.strictEqual(cancelled.body.status, "cancelled")
            assert.strictEqual(cancelled.body.reason, "cancelled_by_user")

            const again = yield* call(control, "DELETE", `/v1/sessions/${id}`)
            assert.strictEqual(again.status, 409)
            assert.strictEqual(again.body._tag, "IllegalTransition")
            assert.strictEqual(again.body.from, "cancelled")

            // A cancelled session left the queue: a node that comes up now never receives it.
            const node = yield* registerFakeNode(control.registry, { id: "n-after-cancel", maxConcurrent: 4 })
            yield* Effect.sleep(400)
            assert.notInclude(node.dispatched.map((d) => d.sessionId), id)

            const missing = yield* call(control, "GET", "/v1/sessions/01900000-0000-7000-8000-000000000000")
            assert.strictEqual(missing.status, 404)
            assert.strictEqual(missing.body._tag, "SessionNotFound")
          }))

        it.effect("dispatches to a node, decrypts credentials only for it, and streams events as SSE", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const node = yield* registerFakeNode(control.registry, { id: "n-sse", maxConcurrent: 2 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: withCredentials("echo done") })
            const id: string = created.body.sessionId
            const done = yield* waitForSession(control, id, (s) => s.status === "completed")
            assert.strictEqual(done.node, "n-sse")
            assert.strictEqual(done.result.exitCode, 0)
            assert.deepStrictEqual(done.result.output, { ok: true })
            assert.isString(done.startedAt)
            assert.isAtLeast(done.durationMs, 0)

            const dispatch = node.dispatched.find((d) => d.sessionId === id)!
            assert.deepStrictEqual(dispatch.network.credentials, {
              "api.example.com": { headers: { "x-api-key": secret, Authorization: `Bearer ${secret}` } },
            })
            assert.deepStrictEqual(dispatch.network.allowOut, ["api.example.com", "*.githubusercontent.com"])

            const sse = yield* readEvents(control, id)
            assert.strictEqual(sse.status, 200)
            assert.match(sse.contentType ?? "", /^text\/event-stream/)
            assert.deepStrictEqual(
              sse.frames.map((f) => f.data._tag === "status" ? `status:${f.data.status}` : f.event),
              [
                "status:pending",
                "status:starting",
                "status:running",
                "output",
                "output",
                "audit",
                "result",
                "status:completed",
              ],
            )
            const ids = sse.frames.map((f) => BigInt(f.id))
            assert.deepStrictEqual([...ids].sort((a, b) => (a < b ? -1 : 1)), ids, "event ids increase")
            assert.strictEqual(sse.frames[3]!.data.data, `hello from ${id}\n`)

            const resumed = yield* readEvents(control, id, sse.frames[4]!.id)
            assert.deepStrictEqual(resumed.frames.map((f) => f.event), ["audit", "result", "status"])

            const events404 = yield* call(control, "GET", "/v1/sessions/01900000-0000-7000-8000-000000000000/events")
            assert.strictEqual(events404.status, 404)
          }))

        it.effect("output with NUL or lone surrogates from a node is stored (as U+FFFD) and the session completes", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-binary", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("binary") })
            yield* waitForSession(control, created.body.sessionId, (s) => s.status === "completed")
            const sse = yield* readEvents(control, created.body.sessionId)
            assert.strictEqual(sse.frames.find((f) => f.event === "output")!.data.data, "a\uFFFDb\uFFFD")
          }))

        it.effect("streams live events to a client that connects before the session runs", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("slow") })
            const id: string = created.body.sessionId
            const reading = yield* Effect.forkChild(readEvents(control, id))
            yield* Effect.sleep(300)
            yield* registerFakeNode(control.registry, { id: "n-live", maxConcurrent: 1 })
            const sse = yield* Fiber.join(reading)
            assert.strictEqual(sse.frames.at(-1)!.data.status, "completed")
            assert.strictEqual(sse.frames[0]!.data.status, "pending")
          }))

        it.effect("cancelling a running session stops it on its node", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const node = yield* registerFakeNode(control.registry, { id: "n-cancel", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("hang") })
            const id: string = created.body.sessionId
            yield* waitForSession(control, id, (s) => s.status === "running")
            const cancelled = yield* call(control, "DELETE", `/v1/sessions/${id}`)
            assert.strictEqual(cancelled.status, 200, cancelled.text)
            assert.strictEqual(cancelled.body.status, "cancelled")
            assert.include(node.cancelled, id)
            const sse = yield* readEvents(control, id)
            assert.strictEqual(sse.frames.at(-1)!.data.status, "cancelled")
            // The slot is free again: the next session runs.
            const next = yield* call(control, "POST", "/v1/sessions", { body: script("echo next") })
            yield* waitForSession(control, next.body.sessionId, (s) => s.status === "completed")
          }))

        it.effect("a node that dies mid-run fails the session with node_lost", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-crash", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("crash") })
            const s = yield* waitForSession(control, created.body.sessionId, (s) => s.status === "failed")
            assert.strictEqual(s.reason, "node_lost")
          }))

        it.effect("a node that never reports back past the session timeout: control marks it timeout", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const node = yield* registerFakeNode(control.registry, { id: "n-silent", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("hang", { timeoutMs: 1000 }) })
            const id = created.body.sessionId
            yield* waitForSession(control, id, (s) => s.status === "running")
            const s = yield* waitForSession(control, id, (s) => s.status === "timeout", 5_000)
            assert.strictEqual(s.reason, "node_missed_deadline")
            // Control tells the node after it recorded the timeout (and its audit row): wait for that.
            for (let i = 0; i < 200 && !node.cancelled.includes(id); i++) yield* Effect.sleep(25)
            assert.include(node.cancelled, id)
          }))

        it.effect("a session whose node keeps failing before the VM starts is retried, then failed", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const node = yield* registerFakeNode(control.registry, { id: "n-vanish", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("vanish") })
            const id = created.body.sessionId
            const s = yield* waitForSession(control, id, (s) => s.status === "failed")
            assert.strictEqual(s.reason, "node_lost (3 attempts)")
            assert.strictEqual(node.dispatched.filter((d) => d.sessionId === id).length, 3)
            const sse = yield* readEvents(control, id)
            assert.deepStrictEqual(
              sse.frames.map((f) => f.data.status),
              ["pending", "starting", "pending", "starting", "pending", "starting", "failed"],
            )
          }))

        it.effect("a session its node still holds from an earlier attempt is retried once that attempt is gone", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const node = yield* registerFakeNode(control.registry, { id: "n-held", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("stillheld 2") })
            const id = created.body.sessionId
            const s = yield* waitForSession(control, id, (s) => s.status === "completed", 15_000)
            assert.strictEqual(node.dispatched.filter((d) => d.sessionId === id).length, 3)
            const sse = yield* readEvents(control, id)
            assert.deepStrictEqual(
              sse.frames.flatMap((f) => f.data.status === undefined ? [] : [f.data.status]),
              ["pending", "starting", "pending", "starting", "pending", "starting", "running", "completed"],
            )
            assert.strictEqual(s.status, "completed")
          }))

        it.effect("a session its node keeps holding is failed after the retries, naming why", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-held-forever", maxConcurrent: 1 })
            const created = yield* call(control, "POST", "/v1/sessions", { body: script("stillheld 99") })
            const s = yield* waitForSession(control, created.body.sessionId, (s) => s.status === "failed", 30_000)
            assert.strictEqual(s.reason, "node_reports_already_running (6 attempts)")
          }))

        it.effect("dispatches in queue order within node capacity", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const ids: Array<string> = []
            for (let i = 0; i < 4; i++) {
              const r = yield* call(control, "POST", "/v1/sessions", { body: script(`slow ${i}`) })
              ids.push(r.body.sessionId)
            }
            const node = yield* registerFakeNode(control.registry, { id: "n-order", maxConcurrent: 1 })
            let maxRunning = 0
            for (const id of ids) {
              yield* waitForSession(control, id, (s) => {
                return s.status === "completed"
              }, 20_000)
              const running = yield* call(control, "GET", "/v1/sessions?status=running")
              maxRunning = Math.max(maxRunning, running.body.sessions.length)
            }
            assert.deepStrictEqual(node.dispatched.map((d) => d.sessionId).filter((id) => ids.includes(id)), ids)
            assert.isAtMost(maxRunning, 1)
          }))

        it.effect("pages through sessions with a cursor, newest first, and filters by status", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const mine: Array<string> = []
            for (let i = 0; i < 5; i++) {
              mine.push((yield* call(control, "POST", "/v1/sessions", { body: script(`page ${i}`) })).body.sessionId)
            }
            yield* call(control, "DELETE", `/v1/sessions/${mine[1]}`)
            const seen: Array<string> = []
            let cursor: string | null = null
            do {
              const page: any = yield* call(control, "GET", `/v1/sessions?limit=2${cursor ? `&cursor=${cursor}` : ""}`)
              assert.strictEqual(page.status, 200)
              assert.isAtMost(page.body.sessions.length, 2)
              seen.push(...page.body.sessions.map((s: any) => s.id))
              cursor = page.body.nextCursor
            } while (cursor !== null)
            assert.strictEqual(new Set(seen).size, seen.length, "no session twice")
            assert.deepStrictEqual([...seen].sort().reverse(), seen, "newest first")
            assert.deepStrictEqual(seen.filter((id) => mine.includes(id)), [...mine].reverse())

            const cancelled = yield* call(control, "GET", "/v1/sessions?status=cancelled&limit=200")
            assert.include(cancelled.body.sessions.map((s: any) => s.id), mine[1])
            assert.isTrue(cancelled.body.sessions.every((s: any) => s.status === "cancelled"))
          }))

        it.effect("Idempotency-Key returns the first session for a retry and 409 for a different body", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const headers = { "idempotency-key": "retry-1" }
            const first = yield* call(control, "POST", "/v1/sessions", { body: withCredentials("idem"), headers })
            const retry = yield* call(control, "POST", "/v1/sessions", { body: withCredentials("idem"), headers })
            assert.strictEqual(first.status, 202)
            assert.strictEqual(retry.status, 202)
            assert.strictEqual(retry.body.sessionId, first.body.sessionId)
            const other = yield* call(control, "POST", "/v1/sessions", { body: withCredentials("different"), headers })
            assert.strictEqual(other.status, 409)
            assert.strictEqual(other.body._tag, "IdempotencyConflict")
            // Concurrent retries (likely in one insert batch) still make exactly one session.
            const racing = yield* Effect.all(
              Array.from({ length: 8 }, () =>
                call(control, "POST", "/v1/sessions", {
                  body: withCredentials("race"),
                  headers: { "idempotency-key": "race-1" },
                })),
              { concurrency: "unbounded" },
            )
            assert.isTrue(racing.every((r) => r.status === 202), racing.map((r) => r.text).join("\n"))
            assert.strictEqual(new Set(racing.map((r) => r.body.sessionId)).size, 1)
            const fresh = yield* call(control, "POST", "/v1/sessions", {
              body: withCredentials("idem"),
              headers: { "idempotency-key": "retry-2" },
            })
            assert.notStrictEqual(fresh.body.sessionId, first.body.sessionId)
          }))
      },
    )
  })
}
