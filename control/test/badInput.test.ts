// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { backends, call, type ControlHandle, script, TestControl } from "./harness.ts"

const limits = { PAWS_MAX_TIMEOUT_MS: "600000", PAWS_MAX_SCRIPT_BYTES: "1000", PAWS_MAX_VCPUS: "2" }

/** Posts a body and expects a 400 whose issues name `path`. */
const rejects = (control: ControlHandle, body: unknown, path: string, message?: RegExp) =>
  Effect.gen(function* () {
    const r = yield* call(control, "POST", "/v1/sessions", { body })
    assert.strictEqual(r.status, 400, `${path}: ${r.text}`)
    assert.strictEqual(r.body._tag, "InvalidRequest")
    const issue = r.body.issues.find((i: any) => i.path === path)
    assert.isDefined(issue, `no issue for ${path} in ${r.text}`)
    if (message !== undefined) assert.match(issue.message, message)
  })

const count = (control: ControlHandle) =>
  Effect.map(call(control, "GET", "/v1/sessions?limit=200"), (r) => r.body.sessions.length as number)

const net = (allowOut: Array<string>, credentials?: Record<string, unknown>) =>
  script("x", { network: { allowOut, ...(credentials ? { credentials } : {}) } })

for (const backend of backends) {
  describe(`bad input over HTTP (${backend.name})`, () => {
    layer(TestControl.layer(limits).pipe(Layer.provide(backend.layer)), {
      excludeTestServices: true,
      timeout: 120_000,
    })(
      (it) => {
        it.effect("every malformed create is a 400 naming the field, and nothing is written", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const before = yield* count(control)

            const malformed = yield* call(control, "POST", "/v1/sessions", { raw: '{"workload": ' })
            assert.strictEqual(malformed.status, 400)
            assert.match(malformed.body.message, /valid JSON/)

            yield* rejects(control, { workload: { type: "script", script: 42 } }, "workload.script", /string/)
            // the union names both workload types
            yield* rejects(control, { workload: { type: "docker", script: "x" } }, "workload", /"script".*"agent"/)
            yield* rejects(control, {}, "workload", /Missing key/)
            yield* rejects(control, script("x", { extra: true }), "extra", /excess/)
            yield* rejects(control, { workload: { type: "script", script: "x", shell: "bash" } }, "workload.shell")
            yield* rejects(control, script(""), "workload.script")
            yield* rejects(control, script("x".repeat(1001)), "workload.script", /maximum is 1000/)
            yield* rejects(control, script("x", { timeoutMs: 600_001 }), "timeoutMs", /at most 600000/)
            yield* rejects(control, script("x", { timeoutMs: 10.5 }), "timeoutMs")
            yield* rejects(control, script("x", { timeoutMs: "60000" }), "timeoutMs")
            yield* rejects(
              control,
              script("x", { resources: { vcpus: 3, memoryMB: 256 } }),
              "resources.vcpus",
              /at most 2/,
            )
            yield* rejects(control, script("x", { resources: { vcpus: 1, memoryMB: 1 } }), "resources.memoryMB")
            yield* rejects(
              control,
              { workload: { type: "script", script: "x", env: { "BAD-NAME": "1" } } },
              "workload.env.BAD-NAME",
            )

            yield* rejects(control, net(["10.0.0.1"]), "network.allowOut[0]", /IP address/)
            yield* rejects(control, net(["https://api.example.com/v1"]), "network.allowOut[0]", /URL/)
            yield* rejects(control, net(["api.example.com:443"]), "network.allowOut[0]", /port/)
            yield* rejects(control, net([""]), "network.allowOut[0]", /empty/)
            yield* rejects(control, net(["*.com"]), "network.allowOut[0]", /too broad/)
            yield* rejects(control, net(["a.*.example.com"]), "network.allowOut[0]")
            yield* rejects(
              control,
              net(["api.example.com"], { "api.example.com": { headers: { "x-api-key": "a\r\nInjected: 1" } } }),
              "network.credentials.api.example.com.headers.x-api-key",
              /CR, LF/,
            )
            yield* rejects(
              control,
              net(["api.example.com"], { "api.example.com": { headers: { "bad header": "v" } } }),
              "network.credentials.api.example.com.headers.bad header",
            )
            yield* rejects(
              control,
              net(["api.example.com"], { "other.example.com": { headers: { "x-api-key": "v" } } }),
              "network.credentials.other.example.com",
              /not in network.allowOut/,
            )

            // Credential secrets: at least 8 characters, an auth scheme not counted.
            yield* rejects(
              control,
              net(["api.example.com"], { "api.example.com": { headers: { "x-api-key": "short12" } } }),
              "network.credentials.api.example.com.headers.x-api-key",
              /shorter than 8 characters/,
            )
            yield* rejects(
              control,
              net(["api.example.com"], { "api.example.com": { headers: { authorization: "Bearer abc1234" } } }),
              "network.credentials.api.example.com.headers.authorization",
              /shorter than 8 characters/,
            )
            // Wildcard credentials only when the request says it means it.
            yield* rejects(
              control,
              net(["*.example.com"], { "*.example.com": { headers: { "x-api-key": "sk-long-enough-1" } } }),
              "network.credentials.*.example.com",
              /allowWildcardCredential/,
            )
            yield* rejects(control, script("echo a\u0000b"), "workload.script", /NUL/)
            yield* rejects(
              control,
              { workload: { type: "script", script: "x", env: { A: "\u0000" } } },
              "workload.env.A",
              /NUL/,
            )
            yield* rejects(control, script("x", { metadata: { k: "v\u0000" } }), "metadata.k", /NUL/)
            yield* rejects(control, script("lone \ud800 surrogate"), "workload.script", /Unicode|surrogate/)

            const text = yield* call(control, "POST", "/v1/sessions", {
              raw: "workload=x",
              headers: { "content-type": "application/x-www-form-urlencoded" },
            })
            assert.strictEqual(text.status, 415)
            assert.strictEqual(text.body._tag, "UnsupportedMediaType")

            assert.strictEqual(yield* count(control), before, "no rejected request wrote a session")
          }))

        it.effect("a wildcard credential passes with allowWildcardCredential; over a public suffix it warns", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const wild = (pattern: string) =>
              call(control, "POST", "/v1/sessions", {
                body: script("x", {
                  network: {
                    allowOut: [pattern],
                    credentials: { [pattern]: { headers: { "x-api-key": "sk-long-enough-1" } } },
                    allowWildcardCredential: true,
                  },
                }),
              })
            const own = yield* wild("*.example.com")
            assert.strictEqual(own.status, 202, own.text)
            assert.isUndefined(own.body.warnings)
            for (const pattern of ["*.github.io", "*.co.uk", "*.com.au"]) {
              const risky = yield* wild(pattern)
              assert.strictEqual(risky.status, 202, risky.text)
              assert.strictEqual(risky.body.warnings.length, 1, risky.text)
              assert.include(risky.body.warnings[0], `network.credentials.${pattern}`)
              assert.match(risky.body.warnings[0], /public suffix/)
            }
            const exact = yield* call(control, "POST", "/v1/sessions", {
              body: net(["api.example.com"], { "api.example.com": { headers: { authorization: "Bearer abcd1234" } } }),
            })
            assert.strictEqual(exact.status, 202, exact.text)
            assert.isUndefined(exact.body.warnings)
          }))

        it.effect("oversize bodies are 413, by Content-Length and when streamed chunked", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const big = JSON.stringify(script("x".repeat(3 * 1024 * 1024)))
            const declared = yield* call(control, "POST", "/v1/sessions", { raw: big })
            assert.strictEqual(declared.status, 413)
            assert.strictEqual(declared.body._tag, "PayloadTooLarge")
            assert.strictEqual(declared.body.maxBytes, 2 * 1024 * 1024)

            const chunked = yield* Effect.promise(async () => {
              const bytes = new TextEncoder().encode(big)
              const body = new ReadableStream<Uint8Array>({
                start(c) {
                  for (let i = 0; i < bytes.length; i += 65536) c.enqueue(bytes.subarray(i, i + 65536))
                  c.close()
                },
              })
              const res = await fetch(`${control.url}/v1/sessions`, {
                method: "POST",
                body,
                duplex: "half",
                headers: { authorization: `Bearer ${control.adminKey}`, "content-type": "application/json" },
              } as RequestInit)
              return { status: res.status, body: await res.json().catch(() => undefined) }
            })
            assert.strictEqual(chunked.status, 413)
            assert.strictEqual(chunked.body?._tag, "PayloadTooLarge")
          }))

        it.effect("bad ids, queries and transitions: 400, 404, 409 with JSON bodies, never 500", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const badId = yield* call(control, "GET", "/v1/sessions/not-a-uuid")
            assert.strictEqual(badId.status, 400)
            assert.strictEqual(badId.body.issues[0].path, "path.id")
            const unknown = yield* call(control, "DELETE", "/v1/sessions/01900000-0000-7000-8000-000000000000")
            assert.strictEqual(unknown.status, 404)
            assert.strictEqual(unknown.body.sessionId, "01900000-0000-7000-8000-000000000000")

            const q = yield* call(control, "GET", "/v1/sessions?status=done&limit=1000&color=red")
            assert.strictEqual(q.status, 400)
            assert.sameMembers(q.body.issues.map((i: any) => i.path), ["query.status", "query.limit", "query.color"])
            const cursor = yield* call(control, "GET", "/v1/sessions?cursor=abc")
            assert.strictEqual(cursor.status, 400)
            assert.strictEqual(cursor.body.issues[0].path, "query.cursor")
            const badResume = yield* call(control, "GET", "/v1/sessions/01900000-0000-7000-8000-000000000000/events", {
              headers: { "last-event-id": "x" },
            })
            assert.strictEqual(badResume.status, 400)
            assert.strictEqual(badResume.body.issues[0].path, "header.last-event-id")

            const created = yield* call(control, "POST", "/v1/sessions", { body: script("x") })
            yield* call(control, "DELETE", `/v1/sessions/${created.body.sessionId}`)
            const twice = yield* call(control, "DELETE", `/v1/sessions/${created.body.sessionId}`)
            assert.strictEqual(twice.status, 409)
            assert.deepInclude(twice.body, { _tag: "IllegalTransition", from: "cancelled", to: "cancelled" })

            const idem = yield* call(control, "POST", "/v1/sessions", {
              body: script("x"),
              headers: { "idempotency-key": "" },
            })
            assert.strictEqual(idem.status, 400)
            assert.strictEqual(idem.body.issues[0].path, "header.idempotency-key")

            // PostgreSQL text cannot hold NUL: a key or node-token name with one is a 400, not a 500.
            for (const [path, extra] of [["/v1/keys", { scopes: ["read"] }], ["/v1/nodes/tokens", {}]] as const) {
              const nul = yield* call(control, "POST", path, { body: { name: "a\u0000b", ...extra } })
              assert.strictEqual(nul.status, 400, `${path}: ${nul.text}`)
              assert.strictEqual(nul.body.issues[0].path, "name")
            }
          }))
      },
    )
  })
}
