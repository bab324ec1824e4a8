import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { call, capturingLogs, pgliteBackend, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

describe("a node's refusal never carries credential values into logs or the API", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("a rejected dispatch is logged redacted; a rejected build's error is shown redacted", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const lines: Array<string> = []
        const control = yield* startControl(yield* db.fresh, {}, capturingLogs(lines))
        const marker = `sk-marker-${crypto.randomUUID()}`
        const network = {
          allowOut: ["api.example.com"],
          credentials: { "api.example.com": { headers: { "x-api-key": marker, authorization: `Bearer ${marker}` } } },
        }
        yield* registerFakeNode(control.registry, { id: "n-rejects", maxConcurrent: 2 })

        const created = yield* call(control, "POST", "/v1/sessions", { body: script("reject", { network }) })
        assert.strictEqual(created.status, 202, created.text)
        const failed = yield* waitForSession(control, created.body.sessionId, (s) => s.status === "failed", 20_000)
        assert.match(failed.reason, /node_lost/)
        const rejections = lines.filter((l) => l.includes("node lost during dispatch"))
        assert.isAtLeast(rejections.length, 1, "the node's refusal is logged")
        assert.include(rejections[0], "Expected a dispatch this node understands")
        assert.include(rejections[0], "[redacted]")

        const build = yield* call(control, "POST", "/v1/snapshots", {
          body: { name: "rejected", setup: "reject", network },
        })
        assert.strictEqual(build.status, 202, build.text)
        const deadline = Date.now() + 10_000
        let view = yield* call(control, "GET", "/v1/snapshots/rejected")
        while (view.body?.status !== "failed" && Date.now() < deadline) {
          yield* Effect.sleep(50)
          view = yield* call(control, "GET", "/v1/snapshots/rejected")
        }
        assert.strictEqual(view.body.status, "failed", view.text)
        assert.include(view.body.error, "[redacted]")
        assert.notInclude(view.text, marker)

        assert.notInclude(lines.join("\n"), marker, "no log line holds the credential value")
      }))
  })
})
