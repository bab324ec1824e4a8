import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { connectLive } from "../../clients/src/LiveClient.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { call, pgliteBackend, script, TestControl } from "./harness.ts"

const secret = "sk-live-canary-9f3e1d"

describe("Cap'n Web live API (/v1/rpc)", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("authenticates with an API key, creates a session and streams its events to the end", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const bad = yield* Effect.promise(() =>
            connectLive(control.url, "paws_not-a-key").then(() => "accepted", (e: Error) => e.message)
          )
          assert.match(bad, /API key/i)

          const connection = yield* Effect.acquireRelease(
            Effect.promise(() => connectLive(control.url, control.adminKey)),
            (c) => Effect.sync(c.close),
          )
          const live = connection.sessions
          const invalid = yield* Effect.promise(() =>
            live.createSession({ workload: { type: "script", script: 42 } }).then(
              () => "accepted",
              (e: Error) => e.message,
            )
          )
          assert.match(invalid, /workload|script/)

          const accepted = yield* Effect.promise(() =>
            live.createSession(script("echo done", {
              network: {
                allowOut: ["api.test.example"],
                credentials: { "api.test.example": { headers: { "x-api-key": secret } } },
              },
            }))
          )
          assert.strictEqual(accepted.status, "pending")
          yield* registerFakeNode(control.registry, { id: "n-live-rpc", maxConcurrent: 1 })
          const events: Array<{ id: string; event: { _tag: string; status?: string } }> = []
          const final = yield* Effect.promise(() =>
            live.subscribe(accepted.sessionId, (e: { id: string; event: unknown }) => void events.push(e as never))
          )
          assert.strictEqual(final.status, "completed")
          // The node's result and final status may be stored in either order; statuses run pending → completed.
          const statuses = events.flatMap((e) => e.event._tag === "status" ? [e.event.status] : [])
          assert.strictEqual(statuses[0], "pending")
          assert.strictEqual(statuses.at(-1), "completed")
          assert.isTrue(events.some((e) => e.event._tag === "result"))
          assert.isTrue(events.some((e) => e.event._tag === "output"))
          assert.notInclude(JSON.stringify(events) + JSON.stringify(final), secret)

          // Resuming after an event id replays only what came after it.
          const later: Array<{ id: string }> = []
          yield* Effect.promise(() =>
            live.subscribe(accepted.sessionId, (e: { id: string }) => void later.push(e), events[1]!.id)
          )
          assert.deepStrictEqual(later.map((e) => e.id), events.slice(2).map((e) => e.id))
        }))

      it.effect("a read-only key can follow but not create or cancel", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const created = yield* call(control, "POST", "/v1/keys", { body: { name: "reader", scopes: ["read"] } })
          const connection = yield* Effect.acquireRelease(
            Effect.promise(() => connectLive(control.url, created.body.secret)),
            (c) => Effect.sync(c.close),
          )
          const reader = connection.sessions
          const denied = yield* Effect.promise(() =>
            reader.createSession(script("x")).then(() => "accepted", (e: Error) => e.message)
          )
          assert.match(denied, /sessions:write/)
          const missing = yield* Effect.promise(() =>
            reader.getSession("01900000-0000-7000-8000-000000000000").then(() => "found", (e: Error) => e.message)
          )
          assert.match(missing, /no session/)
          const plain = yield* call(control, "GET", "/v1/rpc")
          assert.strictEqual(plain.status, 400)
        }))

      it.effect("a capability stops working within 5 s of its key's revocation, a running subscribe included", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const created = yield* call(control, "POST", "/v1/keys", {
            body: { name: "revoked-live", scopes: ["read", "sessions:write"] },
          })
          const connection = yield* Effect.acquireRelease(
            Effect.promise(() => connectLive(control.url, created.body.secret)),
            (c) => Effect.sync(c.close),
          )
          const live = connection.sessions
          // No node takes it: the session stays pending and its subscription open.
          const accepted = yield* Effect.promise(() => live.createSession(script("hang")))
          const subscription = live.subscribe(accepted.sessionId, () => undefined).then(
            () => "ended",
            (e: Error) => e.message,
          )
          yield* Effect.sleep(300)
          const revoked = yield* call(control, "DELETE", `/v1/keys/${created.body.key.id}`)
          assert.strictEqual(revoked.status, 200, revoked.text)
          const at = Date.now()
          const outcome = yield* Effect.promise(() => subscription)
          assert.match(outcome, /revoked/)
          assert.isBelow(Date.now() - at, 5_000)
          const later = yield* Effect.promise(() =>
            live.getSession(accepted.sessionId).then(() => "answered", (e: Error) => e.message)
          )
          assert.match(later, /revoked/)
          const create = yield* Effect.promise(() =>
            live.createSession(script("x")).then(() => "accepted", (e: Error) => e.message)
          )
          assert.match(create, /revoked/)
          yield* call(control, "DELETE", `/v1/sessions/${accepted.sessionId}`)
        }))
    },
  )
})
