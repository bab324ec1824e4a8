import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { call, pgliteBackend, script, TestControl, waitForSession } from "./harness.ts"

const secret = "sk-pause-7d1e0c44-never-shown"

// Control's half of pause/resume against a node double (FakeNode: `hang` sessions pause); the VM half,
// real VMs saved and restored, is node/test/pause.test.ts.
describe("pause and resume over HTTP (control, node double)", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 60_000 })(
    (it) => {
      it.effect("pause frees the node's slot, credentials rotate while paused, resume re-dispatches to the same node with them, 409s name the status", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const node = yield* registerFakeNode(control.registry, { id: "n-pause", maxConcurrent: 1 })
          const created = yield* call(control, "POST", "/v1/sessions", {
            body: script("hang", {
              network: {
                allowOut: ["api.example.com"],
                credentials: { "api.example.com": { headers: { "x-api-key": secret } } },
              },
            }),
          })
          const id: string = created.body.sessionId
          const running = yield* waitForSession(control, id, (s) => s.status === "running")

          const resumeRunning = yield* call(control, "POST", `/v1/sessions/${id}/resume`)
          assert.strictEqual(resumeRunning.status, 409, resumeRunning.text)
          assert.strictEqual(resumeRunning.body._tag, "SessionNotLive")
          assert.strictEqual(resumeRunning.body.status, "running")

          const paused = yield* call(control, "POST", `/v1/sessions/${id}/pause`)
          assert.strictEqual(paused.status, 200, paused.text)
          assert.deepStrictEqual(paused.body, { sessionId: id, status: "paused" })
          assert.isTrue(node.paused.has(id))

          const twice = yield* call(control, "POST", `/v1/sessions/${id}/pause`)
          assert.strictEqual(twice.status, 409, twice.text)
          assert.strictEqual(twice.body.status, "paused")
          assert.include(twice.body.message, "only a running session can be paused")

          // The one slot is free while paused: another session runs to its end meanwhile.
          const other = yield* call(control, "POST", "/v1/sessions", { body: script("echo meanwhile") })
          const done = yield* waitForSession(control, other.body.sessionId, (s) => s.status === "completed")
          assert.strictEqual(done.node, "n-pause")
          assert.strictEqual((yield* call(control, "GET", `/v1/sessions/${id}`)).body.status, "paused")

          // Rotated while paused: values only, for the hosts and headers the session has.
          const rotate = (credentials: unknown) =>
            call(control, "PUT", `/v1/sessions/${id}/credentials`, { body: { credentials } })
          const otherHost = yield* rotate({ "evil.example.com": { headers: { "x-api-key": "sk-rotated-12345678" } } })
          assert.strictEqual(otherHost.status, 400, otherHost.text)
          assert.include(
            otherHost.body.message,
            "credentials.evil.example.com: is not one of the session's credential hosts",
          )
          const otherHeader = yield* rotate({
            "api.example.com": { headers: { authorization: "sk-rotated-12345678" } },
          })
          assert.strictEqual(otherHeader.status, 400, otherHeader.text)
          assert.include(otherHeader.body.message, "is not one of the headers the session injects for api.example.com")
          const weak = yield* rotate({ "api.example.com": { headers: { "x-api-key": "short" } } })
          assert.strictEqual(weak.status, 400, weak.text)
          assert.include(weak.body.message, "credentials.api.example.com.headers.x-api-key: is shorter than 8")
          const rotated = yield* rotate({ "api.example.com": { headers: { "X-Api-Key": "sk-rotated-12345678" } } })
          assert.strictEqual(rotated.status, 200, rotated.text)
          assert.notInclude(rotated.text, "sk-rotated")

          const resumed = yield* call(control, "POST", `/v1/sessions/${id}/resume`)
          assert.strictEqual(resumed.status, 200, resumed.text)
          assert.deepStrictEqual(resumed.body, { sessionId: id, status: "running" })
          const dispatch = node.dispatched.filter((d) => d.sessionId === id)
          assert.strictEqual(dispatch.length, 2)
          assert.strictEqual(dispatch[1]!.resume, true)
          assert.deepStrictEqual(dispatch[0]!.network.credentials["api.example.com"]!.headers, { "x-api-key": secret })
          assert.deepStrictEqual(dispatch[1]!.network.credentials["api.example.com"]!.headers, {
            "X-Api-Key": "sk-rotated-12345678",
          })
          const whileRunning = yield* rotate({ "api.example.com": { headers: { "x-api-key": "sk-rotated-87654321" } } })
          assert.strictEqual(whileRunning.status, 409, whileRunning.text)
          assert.strictEqual(whileRunning.body.status, "running")
          const after = yield* call(control, "GET", `/v1/sessions/${id}`)
          assert.strictEqual(after.body.startedAt, running.startedAt, "a resume keeps when the session began")
          const statuses = (yield* call(control, "GET", `/v1/sessions/${id}`)).body.status
          assert.strictEqual(statuses, "running")

          // Paused again, then cancelled: the node is told (it removes the saved VM).
          assert.strictEqual((yield* call(control, "POST", `/v1/sessions/${id}/pause`)).status, 200)
          const cancelled = yield* call(control, "DELETE", `/v1/sessions/${id}`)
          assert.strictEqual(cancelled.status, 200, cancelled.text)
          assert.strictEqual(cancelled.body.status, "cancelled")
          assert.isFalse(node.paused.has(id))
          assert.include(node.cancelled, id)
          const resumeEnded = yield* call(control, "POST", `/v1/sessions/${id}/resume`)
          assert.strictEqual(resumeEnded.status, 409)
          assert.strictEqual(resumeEnded.body.status, "cancelled")
        }))

      it.effect("a node that cannot pause the session is a 409 with its reason; unknown and other projects' ids are 404", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "n-nopause", maxConcurrent: 2, labels: { nopause: "1" } })
          const created = yield* call(control, "POST", "/v1/sessions", {
            body: script("egress", {
              nodeSelector: { nopause: "1" },
              network: { allowOut: ["api.github.com"], approvals: ["api.github.com"] },
            }),
          })
          const id: string = created.body.sessionId
          yield* waitForSession(control, id, (s) => s.status === "running")
          const refused = yield* call(control, "POST", `/v1/sessions/${id}/pause`)
          assert.strictEqual(refused.status, 409, refused.text)
          assert.include(refused.body.message, "cannot be paused now: only `hang` sessions pause here")
          assert.strictEqual((yield* call(control, "GET", `/v1/sessions/${id}`)).body.status, "running")

          const missing = yield* call(control, "POST", "/v1/sessions/01900000-0000-7000-8000-000000000000/pause")
          assert.strictEqual(missing.status, 404)
          assert.strictEqual(missing.body._tag, "SessionNotFound")

          assert.strictEqual((yield* call(control, "POST", "/v1/projects", { body: { id: "other" } })).status, 201)
          const key = yield* call(control, "POST", "/v1/keys", {
            body: { name: "other", scopes: ["sessions:write", "read"], project: "other" },
          })
          assert.strictEqual(key.status, 201, key.text)
          for (const verb of ["pause", "resume"]) {
            const foreign = yield* call(control, "POST", `/v1/sessions/${id}/${verb}`, { key: key.body.secret })
            assert.strictEqual(foreign.status, 404, foreign.text)
          }
          const readOnly = yield* call(control, "POST", "/v1/keys", { body: { name: "ro", scopes: ["read"] } })
          const forbidden = yield* call(control, "POST", `/v1/sessions/${id}/pause`, { key: readOnly.body.secret })
          assert.strictEqual(forbidden.status, 403, forbidden.text)
          yield* call(control, "DELETE", `/v1/sessions/${id}`)
        }))

      it.effect("a resume whose node no longer holds the saved VM (its report) fails the session paused_vm_lost", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const node = yield* registerFakeNode(control.registry, {
            id: "n-report",
            maxConcurrent: 1,
            labels: { report: "1" },
            reportsPaused: true,
          })
          const id: string = (yield* call(control, "POST", "/v1/sessions", {
            body: script("hang", { nodeSelector: { report: "1" } }),
          })).body.sessionId
          yield* waitForSession(control, id, (s) => s.status === "running")
          assert.strictEqual((yield* call(control, "POST", `/v1/sessions/${id}/pause`)).status, 200)
          node.paused.delete(id) // its disk lost the files (e.g. the data dir was wiped)
          const resumed = yield* call(control, "POST", `/v1/sessions/${id}/resume`)
          assert.strictEqual(resumed.status, 409, resumed.text)
          assert.include(resumed.body.message, "no longer holds its saved VM")
          const failed = yield* call(control, "GET", `/v1/sessions/${id}`)
          assert.strictEqual(failed.body.status, "failed")
          assert.strictEqual(failed.body.reason, "paused_vm_lost")
        }))
    },
  )
})
