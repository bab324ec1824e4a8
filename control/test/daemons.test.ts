// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, TestControl, waitForSession } from "./harness.ts"

const credential = "sk-daemon-secret-value-123"

const define = (control: ControlHandle, body: Record<string, unknown>) =>
  call(control, "POST", "/v1/daemons", {
    body: { workload: { type: "script", script: "echo hi" }, ...body },
  })

/** Posts a daemon and expects a 400 whose issues name `path`. */
const rejects = (control: ControlHandle, body: Record<string, unknown>, path: string, message?: RegExp) =>
  Effect.gen(function* () {
    const r = yield* define(control, { name: "bad", ...body })
    assert.strictEqual(r.status, 400, `${path}: ${r.text}`)
    const issue = r.body.issues.find((i: any) => i.path === path)
    assert.isDefined(issue, `no issue for ${path} in ${r.text}`)
    if (message !== undefined) assert.match(issue.message, message)
  })

const sessionsOf = (control: ControlHandle, name: string) =>
  Effect.map(call(control, "GET", `/v1/sessions?daemon=${name}`), (r) => r.body.sessions as Array<any>)

for (const backend of backends) {
  describe(`daemon definitions over HTTP (${backend.name})`, () => {
    layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("bad definitions are a 400 naming the field; duplicates 409; unknown 404", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* rejects(
              control,
              { triggers: [{ kind: "cron", name: "c", schedule: "61 * * * *" }] },
              "triggers[0].schedule",
              /cron/,
            )
            yield* rejects(
              control,
              { triggers: [{ kind: "cron", name: "c", schedule: "* * * * *", timeZone: "Mars/Olympus" }] },
              "triggers[0].timeZone",
            )
            yield* rejects(
              control,
              { triggers: [{ kind: "carrier-pigeon", name: "p" }] },
              "triggers[0]",
              /kind webhook, github, cron or watch/,
            )
            yield* rejects(
              control,
              { triggers: [{ kind: "webhook", name: "w" }, { kind: "webhook", name: "w" }] },
              "triggers[1].name",
            )
            yield* rejects(
              control,
              { triggers: [{ kind: "github", name: "g", filters: [{ event: "issue_comment", bodyPattern: "(" }] }] },
              "triggers[0].filters[0].bodyPattern",
            )
            yield* rejects(
              control,
              {
                triggers: [{ kind: "github", name: "g", filters: [{ event: "issue_comment", bodyPattern: "(a)\\1" }] }],
              },
              "triggers[0].filters[0].bodyPattern",
              /RE2/,
            )
            yield* rejects(
              control,
              { triggers: [{ kind: "watch", name: "w", url: "http://example.com/x", intervalSeconds: 60 }] },
              "triggers[0].url",
            )
            yield* rejects(
              control,
              { triggers: [{ kind: "watch", name: "w", url: "https://example.com/x", intervalSeconds: 1 }] },
              "triggers[0].intervalSeconds",
            )
            yield* rejects(control, { concurrency: "whenever" }, "concurrency")
            yield* rejects(control, { name: "Bad Name" }, "name")
            yield* rejects(
              control,
              { network: { allowOut: [], credentials: { "api.test": { headers: { a: credential } } } } },
              "network.credentials.api.test",
            )
            const first = yield* define(control, { name: "dup" })
            assert.strictEqual(first.status, 201, first.text)
            const again = yield* define(control, { name: "dup" })
            assert.strictEqual(again.status, 409)
            assert.strictEqual(again.body._tag, "DaemonExists")
            for (
              const [method, path] of [["GET", "/v1/daemons/nope"], ["DELETE", "/v1/daemons/nope"], [
                "POST",
                "/v1/daemons/nope/run",
              ]]
            ) {
              const r = yield* call(control, method!, path!)
              assert.strictEqual(r.status, 404, `${method} ${path}`)
              assert.strictEqual(r.body._tag, "DaemonNotFound")
            }
            const patch404 = yield* call(control, "PATCH", "/v1/daemons/nope", { body: { enabled: false } })
            assert.strictEqual(patch404.status, 404)
            // daemon and trigger are set by control only.
            const forged = yield* call(control, "POST", "/v1/sessions", {
              body: { workload: { type: "script", script: "x" }, daemon: "dup" },
            })
            assert.strictEqual(forged.status, 400)
          }))

        it.effect("create shows trigger secrets once; credentials never come back; patch and delete", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const created = yield* define(control, {
              name: "reviewer",
              network: {
                allowOut: ["api.test"],
                credentials: { "api.test": { headers: { "x-api-key": credential } } },
              },
              triggers: [
                { kind: "webhook", name: "deploy" },
                { kind: "github", name: "gh", filters: [{ event: "pull_request", action: "opened" }] },
                { kind: "cron", name: "nightly", schedule: "0 3 * * *", timeZone: "Europe/Paris" },
              ],
            })
            assert.strictEqual(created.status, 201, created.text)
            assert.deepStrictEqual(Object.keys(created.body.secrets).sort(), ["deploy", "gh"])
            assert.match(created.body.secrets.deploy, /^[A-Za-z0-9_-]{43}$/)
            assert.strictEqual(created.body.daemon.concurrency, "queue")
            assert.strictEqual(created.body.daemon.enabled, true)
            assert.deepStrictEqual(created.body.daemon.network.credentials, { "api.test": { headers: ["x-api-key"] } })
            const shown = yield* call(control, "GET", "/v1/daemons/reviewer")
            const listed = yield* call(control, "GET", "/v1/daemons")
            for (const text of [shown.text, listed.text, created.text]) assert.notInclude(text, credential)
            for (const text of [shown.text, listed.text]) assert.notInclude(text, created.body.secrets.deploy)
            assert.deepStrictEqual(listed.body.map((d: any) => d.name), ["dup", "reviewer"])

            // Kept triggers keep their secret (none returned); a new one gets its own.
            const patched = yield* call(control, "PATCH", "/v1/daemons/reviewer", {
              body: {
                concurrency: "skip",
                triggers: [...created.body.daemon.triggers, { kind: "webhook", name: "second" }],
              },
            })
            assert.strictEqual(patched.status, 200, patched.text)
            assert.deepStrictEqual(Object.keys(patched.body.secrets), ["second"])
            assert.strictEqual(patched.body.daemon.concurrency, "skip")
            // The network (and its sealed credential values) stayed.
            assert.deepStrictEqual(patched.body.daemon.network.credentials, { "api.test": { headers: ["x-api-key"] } })
            const badPatch = yield* call(control, "PATCH", "/v1/daemons/reviewer", {
              body: { triggers: [{ kind: "cron", name: "x", schedule: "nope" }] },
            })
            assert.strictEqual(badPatch.status, 400)
            assert.strictEqual(badPatch.body.issues[0].path, "triggers[0].schedule")

            const removed = yield* call(control, "DELETE", "/v1/daemons/reviewer")
            assert.strictEqual(removed.status, 204)
            assert.strictEqual((yield* call(control, "GET", "/v1/daemons/reviewer")).status, 404)
          }))

        it.effect("a manual run is a session with daemon, trigger and /input; credentials reach the node only", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const node = yield* registerFakeNode(control.registry, { id: "n-manual", maxConcurrent: 4 })
            yield* define(control, {
              name: "manual",
              network: {
                allowOut: ["api.test"],
                credentials: { "api.test": { headers: { "x-api-key": credential } } },
              },
            })
            const run = yield* call(control, "POST", "/v1/daemons/manual/run")
            assert.strictEqual(run.status, 202, run.text)
            const session = yield* waitForSession(control, run.body.sessionId, (s) => s.status === "completed")
            assert.strictEqual(session.daemon, "manual")
            assert.deepStrictEqual(session.trigger, { kind: "manual", name: "manual" })
            assert.notInclude(JSON.stringify(session), credential)
            const dispatch = node.dispatched.find((d) => d.sessionId === run.body.sessionId)!
            assert.strictEqual(dispatch.input?.trigger, "manual")
            assert.strictEqual(JSON.parse(dispatch.input!.files["event.json"]!).kind, "manual")
            assert.strictEqual(dispatch.network.credentials["api.test"]?.headers["x-api-key"], credential)
            // Every invocation carries the daemon's memory (/state); LLM history only when the daemon records it.
            assert.isDefined(dispatch.memory)
            assert.isFalse(dispatch.memory!.recordLlmHistory)
            const recorded = yield* define(control, {
              name: "recorder",
              memory: { llmHistory: true, keepGenerations: 5 },
            })
            assert.strictEqual(recorded.status, 201, recorded.text)
            assert.deepStrictEqual(recorded.body.daemon.memory, { llmHistory: true, keepGenerations: 5 })
            const recRun = yield* call(control, "POST", "/v1/daemons/recorder/run")
            yield* waitForSession(control, recRun.body.sessionId, (s) => s.status === "completed")
            assert.isTrue(node.dispatched.find((d) => d.sessionId === recRun.body.sessionId)!.memory!.recordLlmHistory)
            const badMemory = yield* define(control, { name: "forgetful", memory: { keepGenerations: 0 } })
            assert.strictEqual(badMemory.status, 400, badMemory.text)
            assert.include(badMemory.text, "keepGenerations")
            // A wildcard credential's explicit consent is kept with the daemon and given to each session.
            const wild = yield* define(control, {
              name: "wild",
              network: {
                allowOut: ["*.api.test"],
                credentials: { "*.api.test": { headers: { "x-api-key": credential } } },
                allowWildcardCredential: true,
              },
            })
            assert.strictEqual(wild.status, 201, wild.text)
            assert.isTrue(wild.body.daemon.network.allowWildcardCredential)
            const wildRun = yield* call(control, "POST", "/v1/daemons/wild/run")
            assert.strictEqual(wildRun.status, 202, wildRun.text)
            const listed = yield* sessionsOf(control, "manual")
            assert.deepStrictEqual(listed.map((s) => s.id), [run.body.sessionId])
            const other = yield* call(control, "POST", "/v1/sessions", {
              body: { workload: { type: "script", script: "x" } },
            })
            assert.notInclude((yield* sessionsOf(control, "manual")).map((s) => s.id), other.body.sessionId)
          }))

        it.effect("concurrency: skip records a skipped invocation, replace cancels the running one, queue waits", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-conc", maxConcurrent: 8 })
            const hang = { workload: { type: "script", script: "hang" } }
            for (const policy of ["skip", "replace", "queue"]) {
              yield* define(control, { name: `c-${policy}`, concurrency: policy, ...hang })
            }
            const first = yield* call(control, "POST", "/v1/daemons/c-skip/run")
            yield* waitForSession(control, first.body.sessionId, (s) => s.status === "running")
            const second = yield* call(control, "POST", "/v1/daemons/c-skip/run")
            assert.strictEqual(second.body.status, "cancelled")
            const skipped = yield* waitForSession(control, second.body.sessionId, (s) => s.status === "cancelled")
            assert.strictEqual(skipped.reason, "skipped_while_running")
            assert.strictEqual(
              (yield* call(control, "GET", `/v1/sessions/${first.body.sessionId}`)).body.status,
              "running",
            )

            const r1 = yield* call(control, "POST", "/v1/daemons/c-replace/run")
            yield* waitForSession(control, r1.body.sessionId, (s) => s.status === "running")
            const r2 = yield* call(control, "POST", "/v1/daemons/c-replace/run")
            yield* waitForSession(control, r1.body.sessionId, (s) => s.status === "cancelled")
            yield* waitForSession(control, r2.body.sessionId, (s) => s.status === "running")

            const q1 = yield* call(control, "POST", "/v1/daemons/c-queue/run")
            yield* waitForSession(control, q1.body.sessionId, (s) => s.status === "running")
            const q2 = yield* call(control, "POST", "/v1/daemons/c-queue/run")
            yield* Effect.sleep(600) // three dispatcher passes: q2 must still wait for q1
            assert.strictEqual(
              (yield* call(control, "GET", `/v1/sessions/${q2.body.sessionId}`)).body.status,
              "pending",
            )
            yield* call(control, "DELETE", `/v1/sessions/${q1.body.sessionId}`)
            yield* waitForSession(control, q2.body.sessionId, (s) => s.status === "running")
            for (const id of [first.body.sessionId, r2.body.sessionId, q2.body.sessionId]) {
              yield* call(control, "DELETE", `/v1/sessions/${id}`)
            }
          }))
      },
    )
  })
}
