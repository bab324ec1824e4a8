// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Queue } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { webhookReceiver } from "./support/WebhookReceiver.ts"
import {
  call,
  type ControlHandle,
  pgliteBackend,
  postgresBackend,
  script,
  startControl,
  TestControl,
  TestDatabase,
} from "./harness.ts"

const keyIn = (control: ControlHandle, project: string, scopes: Array<string>) =>
  Effect.map(
    call(control, "POST", "/v1/keys", { body: { name: `${project} ${scopes}`, scopes, project } }),
    (r) => r.body.secret as string,
  )

/** Polls `path` with `key` until `done` holds on the reply body. */
const until = (control: ControlHandle, key: string, path: string, done: (body: any) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 400; i++) {
      const r = yield* call(control, "GET", path, { key })
      if (r.status === 200 && done(r.body)) return r.body
      yield* Effect.sleep(25)
    }
    return yield* Effect.die(new Error(`${path} never matched`))
  })

const egressSpec = (text: string) =>
  script(text, {
    network: {
      allowOut: ["api.github.com"],
      approvals: ["POST api.github.com/repos/*/merges"],
      approvalTimeoutSeconds: 600,
    },
  })

describe("egress approval through control (proxy → node → control → node)", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("a held request is listed, approved over the API and the decision reaches the node", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const hook = yield* webhookReceiver
          yield* call(control, "POST", "/v1/projects", { body: { id: "egress", approvalWebhook: hook.url } })
          const writer = yield* keyIn(control, "egress", ["sessions:write"])
          const approver = yield* keyIn(control, "egress", ["approve"])
          const outsider = yield* keyIn(control, "default", ["approve"])

          const notAllowed = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("x", { network: { allowOut: [], approvals: ["api.github.com"] } }),
          })
          assert.strictEqual(notAllowed.status, 400)
          assert.strictEqual(notAllowed.body.issues[0].path, "network.approvals[0]")
          const badRule = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("x", { network: { allowOut: ["api.github.com"], approvals: ["post api.github.com"] } }),
          })
          assert.strictEqual(badRule.status, 400)
          assert.include(badRule.text, "network.approvals[0]")

          const node = yield* registerFakeNode(control.registry, { id: "n-egress", maxConcurrent: 2 })
          const created = yield* call(control, "POST", "/v1/sessions", { key: writer, body: egressSpec("egress 1") })
          assert.strictEqual(created.status, 202, created.text)
          const id = created.body.sessionId as string
          const path = `/v1/sessions/${id}/egress-approvals`
          const [held] = yield* until(control, writer, path, (b) => b.length === 1)
          assert.deepInclude(held, {
            requestId: `held-${id}`,
            rule: "POST api.github.com/repos/*/merges",
            host: "api.github.com",
            method: "POST",
            status: "pending",
            decidedBy: null,
          })
          const note = yield* Queue.take(hook.bodies)
          assert.deepInclude(note.body, {
            type: "egress.awaiting_approval",
            project: "egress",
            sessionId: id,
            requestId: held.requestId,
            method: "POST",
            host: "api.github.com",
            approvePath: `${path}/${held.requestId}/approve`,
          })
          const sent = node.dispatched.find((d) => d.sessionId === id)!
          assert.deepStrictEqual(sent.network.approvals, ["POST api.github.com/repos/*/merges"])
          assert.strictEqual(sent.network.approvalTimeoutMs, 600_000)

          const decidePath = `${path}/${held.requestId}`
          assert.strictEqual((yield* call(control, "POST", `${decidePath}/approve`, { key: writer })).status, 403)
          assert.strictEqual((yield* call(control, "POST", `${decidePath}/approve`, { key: outsider })).status, 404)
          assert.strictEqual((yield* call(control, "GET", path, { key: outsider })).status, 404)
          const unknown = yield* call(control, "POST", `${path}/nope/approve`, { key: approver })
          assert.strictEqual(unknown.status, 404)
          assert.strictEqual(unknown.body._tag, "EgressRequestNotFound")

          const approved = yield* call(control, "POST", `${decidePath}/approve`, { key: approver })
          assert.strictEqual(approved.status, 200, approved.text)
          assert.strictEqual(approved.body.status, "approved")
          const done = yield* until(control, writer, `/v1/sessions/${id}`, (s) => s.status === "completed")
          assert.strictEqual(done.status, "completed")
          const events = yield* call(control, "GET", `/v1/sessions/${id}/events`, { key: writer })
          assert.include(events.text, "event: egress_approval")
          assert.include(events.text, "merged")
          const again = yield* call(control, "POST", `${decidePath}/deny`, { key: approver })
          assert.strictEqual(again.status, 409)
          assert.include(again.body.message, "already approved")
        }))

      it.effect("a denied request reaches the node as a refusal; an expired one cannot be decided", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* call(control, "POST", "/v1/projects", { body: { id: "egress2" } })
          const writer = yield* keyIn(control, "egress2", ["sessions:write", "approve"])
          yield* registerFakeNode(control.registry, { id: "n-egress-2", maxConcurrent: 2 })
          const created = yield* call(control, "POST", "/v1/sessions", { key: writer, body: egressSpec("egress 2") })
          const id = created.body.sessionId as string
          const path = `/v1/sessions/${id}/egress-approvals`
          const [held] = yield* until(control, writer, path, (b) => b.length === 1)
          const denied = yield* call(control, "POST", `${path}/${held.requestId}/deny`, { key: writer })
          assert.strictEqual(denied.body.status, "denied")
          yield* until(control, writer, `/v1/sessions/${id}`, (s) => s.status === "completed")
          const events = yield* call(control, "GET", `/v1/sessions/${id}/events`, { key: writer })
          assert.include(events.text, "403 from the proxy")

          // A 1-second timeout: by the time it is decided, the proxy has answered 403 already.
          const short = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("egress 3", {
              network: { allowOut: ["api.github.com"], approvals: ["api.github.com"], approvalTimeoutSeconds: 1 },
            }),
          })
          const shortPath = `/v1/sessions/${short.body.sessionId}/egress-approvals`
          const [late] = yield* until(control, writer, shortPath, (b) => b.length === 1 && b[0].status === "expired")
          const tooLate = yield* call(control, "POST", `${shortPath}/${late.requestId}/approve`, { key: writer })
          assert.strictEqual(tooLate.status, 409)
          assert.include(tooLate.body.message, "expired")
          yield* call(control, "DELETE", `/v1/sessions/${short.body.sessionId}`, { key: writer })
        }))
    },
  )
})

describe("egress decisions behind a load balancer (postgres)", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("decided on a replica without the node's link: the replica that has it delivers", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        const a = yield* startControl(store)
        const b = yield* startControl(store)
        yield* registerFakeNode(a.registry, { id: "n-only-on-a", maxConcurrent: 1 })
        const created = yield* call(a, "POST", "/v1/sessions", { body: egressSpec("egress lb") })
        const id = created.body.sessionId as string
        const path = `/v1/sessions/${id}/egress-approvals`
        const [held] = yield* until(b, b.adminKey, path, (rows) => rows.length === 1)
        const approved = yield* call(b, "POST", `${path}/${held.requestId}/approve`)
        assert.strictEqual(approved.status, 200, approved.text)
        const done = yield* until(b, b.adminKey, `/v1/sessions/${id}`, (s) => s.status === "completed")
        assert.strictEqual(done.status, "completed")
      }))
  })
})
