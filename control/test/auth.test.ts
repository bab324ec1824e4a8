// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { statSync } from "node:fs"
import { join } from "node:path"
import { backends, call, script, TestControl } from "./harness.ts"

for (const backend of backends) {
  describe(`API keys and scopes over HTTP (${backend.name})`, () => {
    layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("the first start writes an admin key to a 0600 file", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            assert.match(control.adminKey, /^paws_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/)
            assert.strictEqual(statSync(join(control.dataDir, "admin.key")).mode & 0o777, 0o600)
            assert.strictEqual(statSync(join(control.dataDir, "vault.key")).mode & 0o777, 0o600)
            const keys = yield* call(control, "GET", "/v1/keys")
            assert.strictEqual(keys.status, 200)
            assert.deepStrictEqual(keys.body.map((k: any) => k.scopes), [["admin"]])
            // The secret is the 43 chars after `paws_<id>_` (it may itself contain "_").
            assert.notInclude(keys.text, control.adminKey.slice(-43))
          }))

        it.effect("missing, malformed, unknown and revoked keys get 401 with a reason", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const none = yield* call(control, "GET", "/v1/sessions", { key: null })
            assert.strictEqual(none.status, 401)
            assert.strictEqual(none.body._tag, "Unauthorized")
            assert.match(none.body.message, /missing API key/)
            const malformed = yield* call(control, "GET", "/v1/sessions", { key: "hunter2" })
            assert.strictEqual(malformed.status, 401)
            assert.match(malformed.body.message, /malformed/)
            const wrong = control.adminKey.slice(0, -4) + (control.adminKey.endsWith("AAAA") ? "BBBB" : "AAAA")
            const unknown = yield* call(control, "GET", "/v1/sessions", { key: wrong })
            assert.strictEqual(unknown.status, 401)
            assert.match(unknown.body.message, /invalid API key/)
            const basic = yield* call(control, "GET", "/v1/sessions", {
              key: null,
              headers: { authorization: "Basic dXNlcjpwYXNz" },
            })
            assert.strictEqual(basic.status, 401)

            const made = yield* call(control, "POST", "/v1/keys", { body: { name: "ci", scopes: ["read"] } })
            assert.strictEqual(made.status, 201, made.text)
            const secret: string = made.body.secret
            assert.strictEqual((yield* call(control, "GET", "/v1/sessions", { key: secret })).status, 200)
            const revoked = yield* call(control, "DELETE", `/v1/keys/${made.body.key.id}`)
            assert.strictEqual(revoked.status, 200)
            assert.isString(revoked.body.revokedAt)
            const after = yield* call(control, "GET", "/v1/sessions", { key: secret })
            assert.strictEqual(after.status, 401)
            assert.match(after.body.message, /revoked/)
            const missingKey = yield* call(control, "DELETE", "/v1/keys/zzzzzzzzzzzz")
            assert.strictEqual(missingKey.status, 404)
            assert.strictEqual(missingKey.body._tag, "ApiKeyNotFound")
          }))

        it.effect("scopes: read can read, sessions:write can create and cancel, only admin manages keys", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const reader =
              (yield* call(control, "POST", "/v1/keys", { body: { name: "r", scopes: ["read"] } })).body.secret
            const writer =
              (yield* call(control, "POST", "/v1/keys", { body: { name: "w", scopes: ["sessions:write"] } })).body
                .secret

            const denied = yield* call(control, "POST", "/v1/sessions", { key: reader, body: script("x") })
            assert.strictEqual(denied.status, 403)
            assert.strictEqual(denied.body._tag, "Forbidden")
            assert.strictEqual(denied.body.requiredScope, "sessions:write")

            const created = yield* call(control, "POST", "/v1/sessions", { key: writer, body: script("x") })
            assert.strictEqual(created.status, 202)
            const id = created.body.sessionId
            assert.strictEqual((yield* call(control, "GET", `/v1/sessions/${id}`, { key: reader })).status, 200)
            assert.strictEqual((yield* call(control, "GET", `/v1/sessions/${id}`, { key: writer })).status, 200)
            assert.strictEqual((yield* call(control, "GET", "/v1/nodes", { key: reader })).status, 200)
            assert.strictEqual((yield* call(control, "GET", "/metrics", { key: reader })).status, 200)
            assert.strictEqual((yield* call(control, "DELETE", `/v1/sessions/${id}`, { key: reader })).status, 403)
            assert.strictEqual((yield* call(control, "DELETE", `/v1/sessions/${id}`, { key: writer })).status, 200)

            for (const key of [reader, writer]) {
              const keys = yield* call(control, "GET", "/v1/keys", { key })
              assert.strictEqual(keys.status, 403)
              assert.strictEqual(keys.body.requiredScope, "admin")
              const mk = yield* call(control, "POST", "/v1/keys", { key, body: { name: "x", scopes: ["admin"] } })
              assert.strictEqual(mk.status, 403)
            }
            const bad = yield* call(control, "POST", "/v1/keys", { body: { name: "x", scopes: ["root"] } })
            assert.strictEqual(bad.status, 400)
            assert.strictEqual(bad.body.issues[0].path, "scopes[0]")
          }))

        it.effect("health needs no key; docs and the OpenAPI document are served", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            assert.deepStrictEqual((yield* call(control, "GET", "/healthz", { key: null })).body, { status: "ok" })
            assert.deepStrictEqual((yield* call(control, "GET", "/readyz", { key: null })).body, { status: "ok" })
            const spec = yield* call(control, "GET", "/openapi.json", { key: null })
            assert.strictEqual(spec.status, 200)
            assert.property(spec.body.paths, "/v1/sessions/{id}/events")
            const nowhere = yield* call(control, "GET", "/v2/nothing?x=1", { key: null })
            assert.strictEqual(nowhere.status, 404)
            assert.strictEqual(nowhere.body._tag, "NotFound")
            const docs = yield* call(control, "GET", "/docs", { key: null })
            assert.strictEqual(docs.status, 200)
            assert.include(docs.text, "<html")
          }))

        it.effect("/metrics counts requests, creates and sessions by status in Prometheus format", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* call(control, "POST", "/v1/sessions", { body: script("metrics") })
            const m = yield* call(control, "GET", "/metrics")
            assert.strictEqual(m.status, 200)
            assert.match(m.headers.get("content-type") ?? "", /^text\/plain/)
            assert.match(m.text, /^paws_sessions_created_total [1-9]\d*$/m)
            assert.match(m.text, /^paws_sessions\{status="pending"\} [1-9]\d*$/m)
            assert.match(m.text, /^paws_queue_depth [1-9]\d*$/m)
            assert.match(
              m.text,
              /^paws_http_requests_total\{method="POST",route="\/v1\/sessions",status="202"\} [1-9]/m,
            )
            assert.notMatch(m.text, /route="\/v1\/sessions\/[0-9a-f]{8}-/, "ids are collapsed in route labels")
            assert.match(
              m.text,
              /^paws_http_request_duration_seconds_bucket\{method="POST",route="\/v1\/sessions",le="\+Inf"\} /m,
            )
          }))
      },
    )
  })
}
