// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Queue, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
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
  waitForSession,
} from "./harness.ts"

/** Polls a session with `key` (the admin key sees only the default project) until `done` holds. */
const waitAs = (control: ControlHandle, key: string, id: string, done: (s: any) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 400; i++) {
      const r = yield* call(control, "GET", `/v1/sessions/${id}`, { key })
      if (r.status === 200 && done(r.body)) return r.body
      yield* Effect.sleep(25)
    }
    return yield* Effect.die(new Error(`session ${id} never matched`))
  })

const keyIn = (control: ControlHandle, project: string, scopes: Array<string>) =>
  Effect.map(
    call(control, "POST", "/v1/keys", { body: { name: `${project} ${scopes}`, scopes, project } }),
    (r) => r.body.secret as string,
  )

describe("approval gates", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("a session with requiresApproval waits, is announced to the webhook, and runs only once approved", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const hook = yield* webhookReceiver
          const made = yield* call(control, "POST", "/v1/projects", {
            body: { id: "gated", approvalWebhook: hook.url },
          })
          assert.strictEqual(made.status, 201, made.text)
          const writer = yield* keyIn(control, "gated", ["sessions:write"])
          const approver = yield* keyIn(control, "gated", ["approve"])
          const outsider = yield* keyIn(control, "default", ["approve"])

          const bad = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("echo", { approvalExpiresInMinutes: 5 }),
          })
          assert.strictEqual(bad.status, 400)
          assert.strictEqual(bad.body.issues[0].path, "approvalExpiresInMinutes")
          const absurd = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("echo", { requiresApproval: true, approvalExpiresInMinutes: -3 }),
          })
          assert.strictEqual(absurd.status, 400)
          assert.include(absurd.text, "approvalExpiresInMinutes")

          const gated = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("echo gated", { requiresApproval: true, approvalExpiresInMinutes: 30 }),
          })
          assert.strictEqual(gated.status, 202, gated.text)
          assert.strictEqual(gated.body.status, "awaiting_approval")
          const id = gated.body.sessionId as string
          const note = yield* Queue.take(hook.bodies)
          assert.strictEqual(note.method, "POST")
          assert.strictEqual(note.contentType, "application/json")
          assert.deepInclude(note.body, { type: "session.awaiting_approval", sessionId: id, project: "gated" })
          assert.isString(note.body.expiresAt)
          assert.notInclude(JSON.stringify(note.body), "echo gated", "the webhook gets ids, never the script")

          // A node is there and an ungated session runs past the waiting one, which stays put.
          const node = yield* registerFakeNode(control.registry, { id: "n-approvals", maxConcurrent: 2 })
          const free = yield* call(control, "POST", "/v1/sessions", { key: writer, body: script("echo free") })
          yield* waitAs(control, writer, free.body.sessionId, (s) => s.status === "completed")
          const waiting = yield* call(control, "GET", `/v1/sessions/${id}`, { key: writer })
          assert.strictEqual(waiting.body.status, "awaiting_approval")
          assert.isString(waiting.body.approvalExpiresAt)
          assert.isFalse(node.dispatched.some((d) => d.sessionId === id))

          const listed = yield* call(control, "GET", "/v1/approvals", { key: writer })
          assert.deepStrictEqual(listed.body.map((a: any) => a.sessionId), [id])
          assert.deepStrictEqual(
            (yield* call(control, "GET", "/v1/approvals", { key: outsider })).body,
            [],
            "another project's approvals are not listed",
          )

          // Deciding needs the approve scope, in the session's project.
          const byWriter = yield* call(control, "POST", `/v1/sessions/${id}/approve`, { key: writer })
          assert.strictEqual(byWriter.status, 403)
          assert.strictEqual(byWriter.body.requiredScope, "approve")
          const byOutsider = yield* call(control, "POST", `/v1/sessions/${id}/approve`, { key: outsider })
          assert.strictEqual(byOutsider.status, 404)
          const unknown = yield* call(control, "POST", `/v1/sessions/0190a0f4-0000-7000-8000-000000000000/approve`, {
            key: approver,
          })
          assert.strictEqual(unknown.status, 404)

          const approved = yield* call(control, "POST", `/v1/sessions/${id}/approve`, { key: approver })
          assert.strictEqual(approved.status, 200, approved.text)
          // Queued: a dispatcher (on any replica) may already have claimed it by the time this answer is read.
          assert.include(["pending", "starting", "running", "completed"], approved.body.status)
          const done = yield* waitAs(control, writer, id, (s) => s.status === "completed")
          assert.isTrue(node.dispatched.some((d) => d.sessionId === id))
          assert.notProperty(done, "approvalExpiresAt")
          const twice = yield* call(control, "POST", `/v1/sessions/${id}/approve`, { key: approver })
          assert.strictEqual(twice.status, 409)
          assert.include(twice.body.message, "not awaiting approval")
          const denyDone = yield* call(control, "POST", `/v1/sessions/${id}/deny`, { key: approver })
          assert.strictEqual(denyDone.status, 409)

          // Deny: cancelled with the reason, never dispatched; a second decision is a 409.
          const other = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("echo denied", { requiresApproval: true }),
          })
          const otherId = other.body.sessionId as string
          yield* Queue.take(hook.bodies)
          const denied = yield* call(control, "POST", `/v1/sessions/${otherId}/deny`, { key: approver })
          assert.strictEqual(denied.status, 200, denied.text)
          assert.strictEqual(denied.body.status, "cancelled")
          assert.match(denied.body.reason, /^approval_denied/)
          const late = yield* call(control, "POST", `/v1/sessions/${otherId}/approve`, { key: approver })
          assert.strictEqual(late.status, 409)
          assert.isFalse(node.dispatched.some((d) => d.sessionId === otherId))

          // Its owner may cancel a waiting session too.
          const third = yield* call(control, "POST", "/v1/sessions", {
            key: writer,
            body: script("echo", { requiresApproval: true }),
          })
          const cancelled = yield* call(control, "DELETE", `/v1/sessions/${third.body.sessionId}`, { key: writer })
          assert.strictEqual(cancelled.body.status, "cancelled")
          assert.deepStrictEqual((yield* call(control, "GET", "/v1/approvals", { key: writer })).body, [])
        }))
    },
  )
})

describe("approval expiry across replicas (postgres)", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("an expired approval cannot be approved, and another replica's sweep denies it", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        // Replica A sweeps only at start: what expires afterwards is left to the decision check and to B.
        const a = yield* startControl(store, { PAWS_APPROVAL_SWEEP_MS: "600000" })
        const ids: Array<string> = []
        for (let i = 0; i < 2; i++) {
          const r = yield* call(a, "POST", "/v1/sessions", {
            body: script("echo", { requiresApproval: true, approvalExpiresInMinutes: 60 }),
          })
          ids.push(r.body.sessionId)
        }
        // An hour passes (in the database, whose clock is the one that counts).
        yield* Effect.scoped(Effect.gen(function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
          yield* sql`UPDATE sessions SET approval_expires_at = now() - interval '1 second'`
        })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

        const approve = yield* call(a, "POST", `/v1/sessions/${ids[0]}/approve`)
        assert.strictEqual(approve.status, 409)
        assert.include(approve.body.message, "expired")
        const first = yield* call(a, "GET", `/v1/sessions/${ids[0]}`)
        assert.deepInclude(first.body, { status: "cancelled", reason: "approval_expired" })

        const b = yield* startControl(store, { PAWS_APPROVAL_SWEEP_MS: "100" })
        const second = yield* waitForSession(b, ids[1]!, (s) => s.status === "cancelled")
        assert.strictEqual(second.reason, "approval_expired")
      }))
  })
})
