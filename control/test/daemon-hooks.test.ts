// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createHmac } from "node:crypto"
import { createRequire } from "node:module"
import { signWebhook } from "../src/daemons/WebhookSignature.ts"
import { type FakeNode, registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, TestControl, waitForSession } from "./harness.ts"

/** GitHub's published example deliveries (MIT, github:octokit/webhooks). */
const examples: Array<{ name: string; examples: Array<any> }> = createRequire(import.meta.url)(
  "@octokit/webhooks-examples",
)
const example = (event: string, pick: (e: any) => boolean) =>
  examples.find((d) => d.name === event)!.examples.find(pick)

const hookBytes = 64 * 1024

/** Sends a raw body to a hook with the given headers; no API key (hooks are public, signed). */
const deliver = (control: ControlHandle, path: string, raw: string, headers: Record<string, string>) =>
  call(control, "POST", path, { raw, key: null, headers: { "content-type": "application/json", ...headers } })

const now = () => String(Math.floor(Date.now() / 1000))
const pawsHeaders = (secret: string, body: string, timestamp = now()) => ({
  "x-paws-timestamp": timestamp,
  "x-paws-signature-256": signWebhook(secret, timestamp, body),
})
const githubHeaders = (secret: string, body: string, event: string, delivery: string) => ({
  "x-github-event": event,
  "x-github-delivery": delivery,
  "x-hub-signature-256": "sha256=" + createHmac("sha256", secret).update(body).digest("hex"),
})

const countSessions = (control: ControlHandle, daemon: string) =>
  Effect.map(call(control, "GET", `/v1/sessions?daemon=${daemon}`), (r) => r.body.sessions.length as number)

const dispatchOf = (node: FakeNode, id: string) =>
  Effect.gen(function* () {
    while (true) {
      const d = node.dispatched.find((x) => x.sessionId === id)
      if (d !== undefined) return d
      yield* Effect.sleep(20)
    }
  })

for (const backend of backends) {
  describe(`webhook and GitHub triggers against a running control (${backend.name})`, () => {
    layer(
      TestControl.layer({ PAWS_HOOK_MAX_BYTES: String(hookBytes), PAWS_HOOK_REPLAY_WINDOW_S: "60" }).pipe(
        Layer.provide(backend.layer),
      ),
      { excludeTestServices: true, timeout: 120_000 },
    )((it) => {
      it.effect("webhook: good fires once with the body in /input; bad, replayed, stale, oversized make no session", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const node = yield* registerFakeNode(control.registry, { id: "n-hook", maxConcurrent: 8 })
          const created = yield* call(control, "POST", "/v1/daemons", {
            body: {
              name: "deployer",
              workload: { type: "script", script: "echo deploy" },
              triggers: [{ kind: "webhook", name: "deploy" }, { kind: "cron", name: "tick", schedule: "0 0 1 1 *" }],
            },
          })
          const secret: string = created.body.secrets.deploy
          const path = "/v1/hooks/deployer/deploy"
          const body = JSON.stringify({ ref: "v1.2.3", note: "ship it" })

          const good = yield* deliver(control, path, body, pawsHeaders(secret, body))
          assert.strictEqual(good.status, 202, good.text)
          const session = yield* waitForSession(control, good.body.sessionId, (s) => s.status === "completed")
          assert.deepStrictEqual(session.trigger, { kind: "webhook", name: "deploy" })
          const dispatch = yield* dispatchOf(node, good.body.sessionId)
          assert.strictEqual(dispatch.input?.trigger, "webhook")
          const event = JSON.parse(dispatch.input!.files["event.json"]!)
          assert.deepStrictEqual(event.body, { ref: "v1.2.3", note: "ship it" })
          assert.strictEqual(event.trigger, "deploy")
          // Neither the secret nor the signature reach the node (and so the guest).
          const sent = JSON.stringify(dispatch)
          assert.notInclude(sent, secret)
          assert.notInclude(
            sent,
            good.text.includes("sha256") ? "never" : pawsHeaders(secret, body)["x-paws-signature-256"],
          )
          assert.notInclude(sent, "sha256=")
          assert.strictEqual(yield* countSessions(control, "deployer"), 1)

          // The very same delivery again: refused, no second session.
          const again = JSON.stringify({ ref: "v1.2.3", id: "second" })
          const signed = pawsHeaders(secret, again)
          const first = yield* deliver(control, path, again, signed)
          assert.strictEqual(first.status, 202, first.text)
          const replayed = yield* deliver(control, path, again, signed)
          assert.strictEqual(replayed.status, 401, replayed.text)
          assert.match(replayed.body.message, /replayed/)

          const wrongSecret = yield* deliver(control, path, body, pawsHeaders("not-the-secret", body))
          assert.strictEqual(wrongSecret.status, 401)
          assert.match(wrongSecret.body.message, /does not match/)
          const tampered = yield* deliver(control, path, body.replace("ship", "drop"), pawsHeaders(secret, body))
          assert.strictEqual(tampered.status, 401)
          const unsigned = yield* deliver(control, path, body, {})
          assert.strictEqual(unsigned.status, 401)
          const old = String(Math.floor(Date.now() / 1000) - 3600)
          const stale = yield* deliver(control, path, body, pawsHeaders(secret, body, old))
          assert.strictEqual(stale.status, 401)
          assert.match(stale.body.message, /replay window/)
          // The signed timestamp cannot be swapped for a fresh one.
          const moved = yield* deliver(control, path, body, {
            ...pawsHeaders(secret, body, old),
            "x-paws-timestamp": now(),
          })
          assert.strictEqual(moved.status, 401)
          // Each firing and each refused delivery is in the audit log, filed under the daemon; no secret in it.
          const audited = yield* call(control, "GET", "/v1/audit?daemon=deployer&limit=100")
          assert.strictEqual(audited.status, 200, audited.text)
          const actions = audited.body.entries.map((e: any) => `${e.action}:${e.result}`)
          assert.include(actions, "daemon.trigger:invoked")
          assert.isAtLeast(actions.filter((a: string) => a === "hook.refused:refused").length, 5)
          assert.notInclude(audited.text, secret)
          const big = JSON.stringify({ blob: "x".repeat(hookBytes) })
          const oversized = yield* deliver(control, path, big, pawsHeaders(secret, big))
          assert.strictEqual(oversized.status, 413, oversized.text)
          // Not a signed trigger, or no such daemon: 404.
          assert.strictEqual(
            (yield* deliver(control, "/v1/hooks/deployer/tick", body, pawsHeaders(secret, body))).status,
            404,
          )
          const nobody = yield* deliver(control, "/v1/hooks/nobody/deploy", body, pawsHeaders(secret, body))
          assert.strictEqual(nobody.status, 404)
          assert.strictEqual(nobody.body._tag, "DaemonNotFound")
          // Any content type: the signed bytes are what counts; non-JSON reaches the guest as text.
          const plain = "deploy v1.2.5"
          const text = yield* call(control, "POST", path, {
            raw: plain,
            key: null,
            headers: { "content-type": "text/plain", ...pawsHeaders(secret, plain) },
          })
          assert.strictEqual(text.status, 202, text.text)
          const textEvent = JSON.parse((yield* dispatchOf(node, text.body.sessionId)).input!.files["event.json"]!)
          assert.strictEqual(textEvent.text, plain)
          assert.strictEqual(yield* countSessions(control, "deployer"), 3)

          // Disabled: a valid delivery runs nothing.
          yield* call(control, "PATCH", "/v1/daemons/deployer", { body: { enabled: false } })
          const fresh = JSON.stringify({ ref: "v1.2.4" })
          const disabled = yield* deliver(control, path, fresh, pawsHeaders(secret, fresh))
          assert.strictEqual(disabled.status, 409)
          assert.strictEqual(disabled.body._tag, "DaemonDisabled")
          assert.strictEqual(yield* countSessions(control, "deployer"), 3)
        }))

      it.effect("GitHub: verified with @octokit/webhooks, filtered by event/action/branch/body, deduplicated", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "n-gh", maxConcurrent: 8 })
          const created = yield* call(control, "POST", "/v1/daemons", {
            body: {
              name: "gh-bot",
              workload: { type: "script", script: "echo review" },
              triggers: [{
                kind: "github",
                name: "repo",
                filters: [
                  { event: "pull_request", action: "opened" },
                  { event: "issue_comment", action: "created", bodyPattern: "totally right" },
                  { event: "push", branch: "master" },
                ],
              }],
            },
          })
          assert.strictEqual(created.status, 201, created.text)
          const secret: string = created.body.secrets.repo
          const path = "/v1/hooks/gh-bot/repo"
          let n = 0
          const send = (event: string, payload: unknown, s = secret, delivery = `d-${++n}`) => {
            const raw = JSON.stringify(payload)
            return deliver(control, path, raw, githubHeaders(s, raw, event, delivery))
          }

          const opened = example("pull_request", (e) => e.action === "opened")
          const fired = yield* send("pull_request", opened, secret, "delivery-pr-1")
          assert.strictEqual(fired.status, 202, fired.text)
          const session = yield* waitForSession(control, fired.body.sessionId, (s) => s.status === "completed")
          assert.deepStrictEqual(session.trigger, { kind: "github", name: "repo" })
          const dup = yield* send("pull_request", opened, secret, "delivery-pr-1")
          assert.strictEqual(dup.status, 200)
          assert.isTrue(dup.body.duplicate)

          const closed = yield* send("pull_request", example("pull_request", (e) => e.action === "closed"))
          assert.isTrue(closed.body.ignored, closed.text)
          const comment = example(
            "issue_comment",
            (e) => e.action === "created" && /totally right/.test(e.comment.body),
          )
          assert.strictEqual((yield* send("issue_comment", comment)).status, 202)
          const otherComment = { ...comment, comment: { ...comment.comment, body: "looks good" } }
          assert.isTrue((yield* send("issue_comment", otherComment)).body.ignored)
          const pushMaster = example("push", (e) => e.ref === "refs/heads/master")
          assert.strictEqual((yield* send("push", pushMaster)).status, 202)
          assert.isTrue((yield* send("push", example("push", (e) => e.ref.startsWith("refs/tags/")))).body.ignored)
          const ping = yield* send("ping", examples.find((d) => d.name === "ping")!.examples[0])
          assert.strictEqual(ping.status, 200)

          const forged = yield* send("pull_request", opened, "some-other-secret")
          assert.strictEqual(forged.status, 401)
          const raw = JSON.stringify(opened)
          const unsigned = yield* deliver(control, path, raw, {
            "x-github-event": "pull_request",
            "x-github-delivery": "x1",
          })
          assert.strictEqual(unsigned.status, 401)
          const sessions = yield* call(control, "GET", "/v1/sessions?daemon=gh-bot")
          assert.strictEqual(sessions.body.sessions.length, 3, sessions.text)
        }))
    })
  })
}
