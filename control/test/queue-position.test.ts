// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { call, pgliteBackend, script, TestControl } from "./harness.ts"

describe("queue position of sessions waiting for a node", () => {
  // No node: every session stays queued.
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("GET /v1/sessions/{id} says where a pending session stands, and it moves up as the queue drains", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const ids: Array<string> = []
          for (let i = 0; i < 3; i++) {
            const r = yield* call(control, "POST", "/v1/sessions", { body: script(`echo ${i}`) })
            assert.strictEqual(r.status, 202, r.text)
            ids.push(r.body.sessionId)
          }
          const positionOf = (id: string) =>
            Effect.map(call(control, "GET", `/v1/sessions/${id}`), (r) => {
              assert.strictEqual(r.status, 200, r.text)
              return r.body as any
            })
          const before = yield* Effect.forEach(ids, positionOf)
          assert.deepStrictEqual(before.map((s) => [s.status, s.queuePosition]), [
            ["pending", 1],
            ["pending", 2],
            ["pending", 3],
          ])
          const cancelled = yield* call(control, "DELETE", `/v1/sessions/${ids[0]}`)
          assert.isBelow(cancelled.status, 300, cancelled.text)
          const after = yield* Effect.forEach(ids, positionOf)
          assert.strictEqual(after[0].status, "cancelled")
          assert.notProperty(after[0], "queuePosition", "only a pending session has a place in the queue")
          assert.deepStrictEqual(after.slice(1).map((s) => s.queuePosition), [1, 2])
          // The list stays as it was (a count per row would cost a query each).
          const list = yield* call(control, "GET", "/v1/sessions?status=pending")
          assert.isTrue(list.body.sessions.every((s: any) => !("queuePosition" in s)))
        }))
    },
  )
})
