// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { backends, call, script, startControl, TestDatabase } from "./harness.ts"

/**
 * The rows one API call records (a create's session status row) are appended with the call's own
 * row in one batch, and that batch is durable before the response: one chain append per create.
 */
for (const backend of backends) {
  describe(`audit rows of one API call, one batch (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 180_000 })((it) => {
      it.effect("a create's status row and its API-call row are stored, adjacent and in one batch, at the 202", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const store = yield* db.fresh
          yield* Effect.scoped(Effect.gen(function* () {
            const control = yield* startControl(store)
            const one = yield* call(control, "POST", "/v1/sessions", { body: script("echo one") })
            assert.strictEqual(one.status, 202, one.text)
            // Read straight after the 202, with no wait: both rows must already be committed.
            const rows = (yield* call(control, "GET", "/v1/audit?limit=1000")).body.entries as Array<any>
            const status = rows.filter((r) => r.action === "session.status" && r.target === one.body.sessionId)
            const api = rows.filter((r) => r.action === "api.sessions.create")
            assert.strictEqual(status.length, 1, JSON.stringify(rows))
            assert.strictEqual(api.length, 1, JSON.stringify(rows))
            assert.strictEqual(api[0].id, status[0].id + 1, "the call's row follows the rows made inside it")
            assert.strictEqual(api[0].time, status[0].time, "one batch (one append, one time)")

            // Concurrent creates: every session has its status row, every call its row; the chain verifies.
            const many = yield* Effect.forEach(
              Array.from({ length: 24 }, (_, i) => i),
              (i) => call(control, "POST", "/v1/sessions", { body: script(`echo ${i}`) }),
              { concurrency: "unbounded" },
            )
            for (const r of many) assert.strictEqual(r.status, 202, r.text)
            const after = (yield* call(control, "GET", "/v1/audit?limit=1000")).body.entries as Array<any>
            const statusTargets = new Set(after.filter((r) => r.action === "session.status").map((r) => r.target))
            for (const r of many) assert.isTrue(statusTargets.has(r.body.sessionId), r.body.sessionId)
            assert.strictEqual(after.filter((r) => r.action === "api.sessions.create").length, 25)
            const verify = yield* call(control, "GET", "/v1/audit/verify")
            assert.strictEqual(verify.status, 200, verify.text)
            assert.isTrue(verify.body.ok, verify.text)
          }))
        }))
    })
  })
}
