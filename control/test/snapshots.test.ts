// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { call, type ControlHandle, pgliteBackend, TestControl } from "./harness.ts"

const limits = { PAWS_MAX_SCRIPT_BYTES: "1000", PAWS_MAX_VCPUS: "2", PAWS_MAX_TIMEOUT_MS: "600000" }

/** Posts a snapshot request and expects a 400 whose issues name `path`. */
const rejects = (control: ControlHandle, body: unknown, path: string, message?: RegExp) =>
  Effect.gen(function* () {
    const r = yield* call(control, "POST", "/v1/snapshots", { body })
    assert.strictEqual(r.status, 400, `${path}: ${r.text}`)
    assert.strictEqual(r.body._tag, "InvalidRequest")
    const issue = r.body.issues.find((i: any) => i.path === path)
    assert.isDefined(issue, `no issue for ${path} in ${r.text}`)
    if (message !== undefined) assert.match(issue.message, message)
  })

const waitFor = (control: ControlHandle, name: string, done: (s: any) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while (true) {
      const r = yield* call(control, "GET", `/v1/snapshots/${name}`)
      if (r.status === 200 && done(r.body)) return r.body
      if (Date.now() > deadline) return yield* Effect.die(new Error(`snapshot ${name} never matched; last: ${r.text}`))
      yield* Effect.sleep(25)
    }
  })

describe("snapshots over HTTP (fake node)", () => {
  layer(TestControl.layer(limits).pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("bad requests are a 400 naming the field; no node is a 503 saying how to start one", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* rejects(control, {}, "name", /Missing key/)
          yield* rejects(control, { name: "Bad Name" }, "name", /a-z 0-9/)
          yield* rejects(control, { name: "ok", base: "../etc" }, "base")
          yield* rejects(control, { name: "ok", setup: "" }, "setup")
          yield* rejects(control, { name: "ok", setup: "x".repeat(1001) }, "setup", /maximum is 1000/)
          yield* rejects(control, { name: "ok", setup: "a\u0000b" }, "setup", /NUL/)
          yield* rejects(control, { name: "ok", memoryMB: 1 }, "memoryMB")
          yield* rejects(control, { name: "ok", vcpus: 3 }, "vcpus", /at most 2/)
          yield* rejects(control, { name: "ok", extra: 1 }, "extra", /excess/)
          yield* rejects(control, { name: "ok", timeoutMs: 999 }, "timeoutMs")
          yield* rejects(control, { name: "ok", timeoutMs: 600_001 }, "timeoutMs", /at most 600000/)
          yield* rejects(control, { name: "ok", network: { allowOut: ["http://x"] } }, "network.allowOut[0]")
          yield* rejects(
            control,
            {
              name: "ok",
              network: { allowOut: ["api.test"], credentials: { "api.test": { headers: { a: "x\r\ny" } } } },
            },
            "network.credentials.api.test.headers.a",
          )
          yield* rejects(
            control,
            { name: "ok", network: { allowOut: [], credentials: { "api.test": { headers: { a: "x" } } } } },
            "network.credentials.api.test",
            /allowOut/,
          )
          yield* rejects(
            control,
            {
              name: "ok",
              network: { allowOut: ["api.test"], credentials: { "api.test": { headers: { a: "1234" } } } },
            },
            "network.credentials.api.test.headers.a",
            /shorter than 8 characters/,
          )
          yield* rejects(
            control,
            {
              name: "ok",
              network: {
                allowOut: ["*.api.test"],
                credentials: { "*.api.test": { headers: { a: "sk-long-enough" } } },
              },
            },
            "network.credentials.*.api.test",
            /allowWildcardCredential/,
          )
          yield* rejects(control, { name: "ok", node: "nowhere" }, "node", /no connected node/)
          const none = yield* call(control, "POST", "/v1/snapshots", { body: { name: "ok" } })
          assert.strictEqual(none.status, 503, none.text)
          assert.match(none.body.message, /paws up/)
          const missing = yield* call(control, "GET", "/v1/snapshots/nope")
          assert.strictEqual(missing.status, 404)
          assert.strictEqual(missing.body._tag, "SnapshotNotFound")
          assert.strictEqual((yield* call(control, "DELETE", "/v1/snapshots/nope")).status, 404)
          assert.strictEqual((yield* call(control, "GET", "/v1/snapshots/Bad%20Name")).status, 400)
          const unauthorized = yield* call(control, "GET", "/v1/snapshots", { key: null })
          assert.strictEqual(unauthorized.status, 401)
          // Building and removing snapshots is for admins; reading is for every key.
          const reader = yield* call(control, "POST", "/v1/keys", { body: { name: "reader", scopes: ["read"] } })
          const key = reader.body.secret as string
          assert.strictEqual((yield* call(control, "GET", "/v1/snapshots", { key })).status, 200)
          const forbidden = yield* call(control, "POST", "/v1/snapshots", { key, body: { name: "ok" } })
          assert.strictEqual(forbidden.status, 403, forbidden.text)
          assert.strictEqual(forbidden.body.requiredScope, "admin")
          assert.strictEqual((yield* call(control, "DELETE", "/v1/snapshots/ok", { key })).status, 403)
        }))

      it.effect("build → progress → ready with manifest; credentials reach the node only; 409 while building; delete", () =>
        Effect.scoped(Effect.gen(function* () {
          const control = yield* TestControl
          const node = yield* registerFakeNode(control.registry, { id: "n-snap", maxConcurrent: 2 })
          const secret = `sk-${crypto.randomUUID()}`
          const body = {
            name: "py",
            setup: "pip install x",
            network: { allowOut: ["api.test"], credentials: { "api.test": { headers: { "x-api-key": secret } } } },
          }
          const accepted = yield* call(control, "POST", "/v1/snapshots", { body })
          assert.strictEqual(accepted.status, 202, accepted.text)
          // Built by the instance admin (a `default` key): the default project's.
          assert.deepStrictEqual(accepted.body, { name: "py", node: "n-snap", status: "building", project: "default" })
          const ready = yield* waitFor(control, "py", (s) => s.status === "ready")
          assert.strictEqual(ready.node, "n-snap")
          assert.strictEqual(ready.manifest.image.name, "default")
          assert.strictEqual(ready.manifest.memoryMB, 256)
          assert.strictEqual(ready.manifest.vcpus, 1)
          assert.strictEqual(node.snapshotBuilds[0]!.timeoutMs, 600_000)
          assert.deepStrictEqual(node.snapshotBuilds[0]!.network, {
            allowOut: ["api.test"],
            credentials: { "api.test": { headers: { "x-api-key": secret } } },
          })
          const list = yield* call(control, "GET", "/v1/snapshots")
          assert.deepStrictEqual(list.body.map((s: any) => [s.name, s.status]), [["py", "ready"]])
          for (const r of [accepted, ready, list]) assert.notInclude(JSON.stringify(r), secret)

          // Unknown base image: a 400 naming `base`, from the node's own answer.
          yield* rejects(control, { name: "nobase", base: "missing" }, "base", /no guest image/)

          const hang = yield* call(control, "POST", "/v1/snapshots", { body: { name: "slow", setup: "hang" } })
          assert.strictEqual(hang.status, 202)
          const building = yield* waitFor(control, "slow", (s) => s.phase === "booted")
          assert.strictEqual(building.status, "building")
          const again = yield* call(control, "POST", "/v1/snapshots", { body: { name: "slow" } })
          assert.strictEqual(again.status, 409, again.text)
          assert.strictEqual(again.body._tag, "SnapshotBusy")
          assert.strictEqual((yield* call(control, "DELETE", "/v1/snapshots/slow")).status, 409)

          assert.strictEqual(
            (yield* call(control, "POST", "/v1/snapshots", { body: { name: "bad", setup: "fail" } })).status,
            202,
          )
          const failed = yield* waitFor(control, "bad", (s) => s.status === "failed")
          assert.match(failed.error, /setup script exited 1/)
          assert.strictEqual((yield* call(control, "DELETE", "/v1/snapshots/bad")).status, 204)
          assert.strictEqual((yield* call(control, "GET", "/v1/snapshots/bad")).status, 404)

          const deleted = yield* call(control, "DELETE", "/v1/snapshots/py")
          assert.strictEqual(deleted.status, 204, deleted.text)
          assert.strictEqual((yield* call(control, "GET", "/v1/snapshots/py")).status, 404)
          assert.strictEqual((yield* call(control, "DELETE", "/v1/snapshots/py")).status, 404)
        })))
    },
  )
})
