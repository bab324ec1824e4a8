// deno-lint-ignore-file no-explicit-any -- the fuzzer reads loosely typed JSON replies
import { afterAll, assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import fc from "fast-check"
import { defaultSessionLimits, SessionSpec, sessionSpecProblems, workloadText } from "@paws/core"
import { pgliteBackend, TestControl } from "./harness.ts"
import type { ControlHandle } from "./harness.ts"
import { rawExchange, rawRequest } from "./support/FuzzHttp.ts"
import type { RawReply } from "./support/FuzzHttp.ts"
import { mutate, mutation, toJson, validSpec } from "./support/FuzzSpecs.ts"

const maxBodyBytes = 256 * 1024
const runs: Record<string, number> = {}
afterAll(() => {
  const total = Object.values(runs).reduce((a, b) => a + b, 0)
  console.log(`fuzz-api: ${JSON.stringify(runs)} total=${total}`)
})

/** fast-check with the seed printed on failure (its default) and cases counted per property. */
const check = <T>(name: string, arb: fc.Arbitrary<T>, numRuns: number, run: (value: T) => Promise<void>) =>
  Effect.promise(async () => {
    await fc.assert(
      fc.asyncProperty(arb, async (v) => {
        runs[name] = (runs[name] ?? 0) + 1
        await run(v)
      }),
      { numRuns, endOnFailure: true },
    )
  })

/** Never a 5xx; every 4xx is a JSON object that says what was wrong. */
const assertWellFormed = (r: RawReply, what: string) => {
  assert.isBelow(r.status, 500, `${what} -> ${r.status} ${r.body.slice(0, 500)}`)
  if (r.status < 400) return
  const body = r.json as any
  assert.isObject(body, `${what} -> ${r.status} without a JSON body: ${r.body.slice(0, 200)}`)
  assert.isString(body.message, `${what} -> ${r.status} without a message: ${r.body.slice(0, 300)}`)
  assert.isAbove(body.message.length, 0)
  if (body._tag === "InvalidRequest") {
    assert.isAbove(body.issues.length, 0, `${what}: InvalidRequest without issues`)
    for (const issue of body.issues) {
      assert.isString(issue.path)
      assert.isAbove(issue.path.length, 0, `${what}: an issue without a path: ${r.body.slice(0, 300)}`)
      assert.isString(issue.message)
    }
  }
}

const standardMethods = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])

const auth = (control: ControlHandle): readonly [string, string] => ["authorization", `Bearer ${control.adminKey}`]
const jsonType = ["content-type", "application/json"] as const

const post = (control: ControlHandle, body: string | Uint8Array, headers: ReadonlyArray<readonly [string, string]>) =>
  rawRequest(control.url, { method: "POST", path: "/v1/sessions", headers: [auth(control), ...headers], body })

/** Every session, following cursors. */
const countSessions = async (control: ControlHandle): Promise<number> => {
  let n = 0
  let cursor: string | null = null
  do {
    const r: RawReply = await rawRequest(control.url, {
      method: "GET",
      path: `/v1/sessions?limit=200${cursor === null ? "" : `&cursor=${cursor}`}`,
      headers: [auth(control)],
    })
    assert.strictEqual(r.status, 200, r.body)
    const page = r.json as any
    n += page.sessions.length
    cursor = page.nextCursor
  } while (cursor !== null)
  return n
}

/** The service still serves: a valid create is accepted and appears in the list. */
const stillServes = async (control: ControlHandle) => {
  const created = await post(control, JSON.stringify({ workload: { type: "script", script: "echo ok" } }), [jsonType])
  assert.strictEqual(created.status, 202, created.body)
  const got = await rawRequest(control.url, {
    method: "GET",
    path: `/v1/sessions/${(created.json as any).sessionId}`,
    headers: [auth(control)],
  })
  assert.strictEqual(got.status, 200, got.body)
}

const decodeSpec = Schema.decodeUnknownExit(SessionSpec)
const locallyValid = (text: string): boolean => {
  if (Buffer.byteLength(text) > maxBodyBytes) return false
  const exit = decodeSpec(JSON.parse(text), { onExcessProperty: "error", errors: "all" })
  if (exit._tag === "Failure" || sessionSpecProblems(exit.value, defaultSessionLimits).length > 0) return false
  // Free text must be storable (PostgreSQL) and passable to a process: no NUL, no lone surrogates.
  const spec = exit.value
  const texts = [
    workloadText(spec.workload).text,
    ...Object.values(spec.workload.env ?? {}),
    ...Object.entries(spec.metadata ?? {}).flat(),
  ]
  return texts.every((t) => !t.includes("\u0000") && t.isWellFormed())
}

const env = { PAWS_MAX_BODY_BYTES: String(maxBodyBytes), PAWS_DISPATCH_INTERVAL_MS: "60000" }

layer(TestControl.layer(env).pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
  "fuzz: REST API over HTTP (PGlite)",
  (it) => {
    it.effect("arbitrary JSON bodies: 4xx naming the problem, nothing written", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const before = yield* Effect.promise(() => countSessions(control))
        let accepted = 0
        yield* check("jsonBodies", fc.jsonValue({ maxDepth: 4 }), 1500, async (value) => {
          const text = JSON.stringify(value)
          const r = await post(control, text, [jsonType])
          assertWellFormed(r, `POST ${text.slice(0, 200)}`)
          if (r.status === 202) accepted++
          else assert.include([400, 413], r.status, r.body)
          assert.strictEqual(r.status === 202, locallyValid(text), `${text.slice(0, 300)} -> ${r.body.slice(0, 300)}`)
        })
        assert.strictEqual(yield* Effect.promise(() => countSessions(control)), before + accepted)
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("near-valid specs: accepted exactly when valid, otherwise a 400 with issue paths", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const before = yield* Effect.promise(() => countSessions(control))
        let accepted = 0
        const arb = fc.tuple(validSpec, fc.array(mutation, { minLength: 1, maxLength: 3 }))
        yield* check("nearValidSpecs", arb, 2000, async ([spec, mutations]) => {
          const text = toJson(mutate(spec, mutations))
          const r = await post(control, text, [jsonType])
          assertWellFormed(r, `POST ${text.slice(0, 300)}`)
          if (r.status === 202) accepted++
          assert.strictEqual(r.status === 202, locallyValid(text), `${text.slice(0, 300)} -> ${r.body.slice(0, 300)}`)
          if (r.status !== 202) assert.include([400, 413], r.status, r.body.slice(0, 300))
        })
        assert.strictEqual(yield* Effect.promise(() => countSessions(control)), before + accepted)
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("API key creation with odd names and scopes: 201 or a 400 naming the field", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const name = fc.oneof(
          fc.string({ maxLength: 140, unit: "binary" }),
          fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom("\0", "\ud800", "\udc00", "\r\n", "\u202e"))
            .map(([a, b]) => a + b + a),
          fc.jsonValue({ maxDepth: 1 }),
        )
        const scopes = fc.oneof(
          fc.subarray(["admin", "sessions:write", "read"], { minLength: 1 }),
          fc.array(fc.oneof(fc.constantFrom("admin", "read", "write", "ADMIN", ""), fc.jsonValue({ maxDepth: 0 })), {
            maxLength: 5,
          }),
        )
        const body = fc.record({ name, scopes, extra: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] })
        yield* check("keyBodies", body, 400, async (value) => {
          const text = JSON.stringify(value)
          const r = await rawRequest(control.url, {
            method: "POST",
            path: "/v1/keys",
            headers: [auth(control), jsonType],
            body: text,
          })
          assertWellFormed(r, `POST /v1/keys ${text.slice(0, 200)}`)
          assert.include([201, 400], r.status, `${text.slice(0, 200)} -> ${r.body.slice(0, 300)}`)
        })
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("arbitrary bytes under any content type, oversize bodies: 4xx, nothing written", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const before = yield* Effect.promise(() => countSessions(control))
        const contentType = fc.option(
          fc.oneof(
            fc.constantFrom(
              "application/json",
              "application/json; charset=utf-16",
              "text/plain",
              "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=xyz",
              "multipart/form-data",
              "application/octet-stream",
              "application/json; boundary=",
              ";;;",
              "*/*",
            ),
            fc.string({ unit: "grapheme-ascii", maxLength: 40 }).map((s) => s.trim()),
          ),
          { nil: undefined },
        )
        const body = fc.oneof(
          fc.uint8Array({ maxLength: 2000 }),
          fc.string({ unit: "binary", maxLength: 500 }).map((s) => new TextEncoder().encode(s)),
          fc.constantFrom('--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--\r\n', "workload=x&a=1")
            .map((s) => new TextEncoder().encode(s)),
        )
        const target = fc.constantFrom("/v1/sessions", "/v1/keys", "/v1/nodes/tokens")
        yield* check("bytesBodies", fc.tuple(target, contentType, body), 800, async ([path, type, bytes]) => {
          const headers: Array<readonly [string, string]> = [auth(control)]
          if (type !== undefined) headers.push(["content-type", type])
          const r = await rawRequest(control.url, { method: "POST", path, headers, body: bytes })
          assertWellFormed(r, `POST ${path} (${type}) ${Buffer.from(bytes).toString("latin1").slice(0, 100)}`)
          if (path === "/v1/sessions") assert.notStrictEqual(r.status, 202, r.body)
        })
        const oversize = fc.tuple(fc.integer({ min: maxBodyBytes + 1, max: 3 * maxBodyBytes }), fc.boolean())
        yield* check("oversizeBodies", oversize, 12, async ([size, valid]) => {
          const padding = "x".repeat(size)
          const text = valid ? JSON.stringify({ workload: { type: "script", script: padding } }) : padding
          const r = await post(control, text, [jsonType])
          assertWellFormed(r, `POST ${size} bytes`)
          assert.strictEqual(r.status, 413, r.body)
        })
        assert.strictEqual(yield* Effect.promise(() => countSessions(control)), before)
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("odd Authorization, Idempotency-Key and Last-Event-ID values: never a 5xx", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        // RFC 9110 field-value octets (VCHAR, obs-text, SP, HTAB); DEL and other controls are malformed
        // HTTP, which Node's parser refuses itself: the raw-garbage test covers those.
        const octet = fc.oneof(
          fc.integer({ min: 0x20, max: 0x7e }),
          fc.integer({ min: 0x80, max: 0xff }),
          fc.constant(9),
        )
        const headerText = fc.string({ unit: octet.map((c) => String.fromCharCode(c)) })
          .map((s) => s.trim())
        const authorization = fc.oneof(
          headerText,
          headerText.map((s) => `Bearer ${s}`),
          fc.constantFrom("Bearer", "Bearer ", "Basic Zm9vOmJhcg==", `bearer ${control.adminKey}`),
          fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 1, unit: "grapheme-ascii" })).map(([i, c]) => {
            const k = control.adminKey
            const at = i % k.length
            return `Bearer ${k.slice(0, at)}${c}${k.slice(at + 1)}`
          }),
        )
        const request = fc.oneof(
          fc.record({ kind: fc.constant("auth" as const), value: authorization }),
          fc.record({
            kind: fc.constant("idempotency" as const),
            value: fc.oneof(headerText, fc.string({ minLength: 250, maxLength: 400, unit: "grapheme-ascii" })),
          }),
          fc.record({
            kind: fc.constant("lastEventId" as const),
            value: fc.oneof(headerText, fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).map(String)),
          }),
        )
        yield* check("oddHeaders", request, 1000, async ({ kind, value }) => {
          let r: RawReply
          if (kind === "auth") {
            r = await rawRequest(control.url, {
              method: "GET",
              path: "/v1/sessions",
              headers: [["authorization", value]],
            })
            if (value !== `Bearer ${control.adminKey}` && value !== `bearer ${control.adminKey}`) {
              assert.strictEqual(r.status, 401, `${JSON.stringify(value)} -> ${r.status} ${r.body}`)
            }
          } else if (kind === "idempotency") {
            r = await post(control, JSON.stringify({ workload: { type: "script", script: "x" } }), [
              jsonType,
              ["idempotency-key", value],
            ])
          } else {
            r = await rawRequest(control.url, {
              method: "GET",
              path: "/v1/sessions/01900000-0000-7000-8000-000000000000/events",
              headers: [auth(control), ["last-event-id", value]],
            })
            assert.include([400, 404], r.status, r.body)
          }
          assertWellFormed(r, `${kind}: ${JSON.stringify(value).slice(0, 200)}`)
        })
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("random methods, paths and query strings: JSON 4xx, never a 5xx", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const segment = fc.oneof(
          fc.constantFrom(
            "v1",
            "sessions",
            "keys",
            "nodes",
            "tokens",
            "events",
            "metrics",
            "healthz",
            "readyz",
            "docs",
          ),
          fc.constantFrom("..", ".", "", "%", "%zz", "%00", "%2F", "%2e%2e", "01900000-0000-7000-8000-000000000000"),
          fc.uuid().map(String),
          fc.string({ maxLength: 20, unit: "binary" }).map(encodeURIComponent),
        )
        const path = fc.oneof(
          fc.array(segment, { maxLength: 5 }).map((s) => "/" + s.join("/")),
          fc.tuple(fc.constantFrom("/v1/sessions/", "/v1/keys/", "/v1/nodes/tokens/"), segment, fc.boolean())
            .map(([prefix, id, events]) => `${prefix}${id}${events ? "/events" : ""}`),
        )
        const queryValue = fc.oneof(
          fc.constantFrom("pending", "done", "0", "-1", "201", "1e3", "NaN", "", "%", "%zz"),
          fc.string({ maxLength: 15, unit: "binary" }).map(encodeURIComponent),
        )
        const query = fc.array(
          fc.tuple(fc.constantFrom("status", "limit", "cursor", "x", "__proto__", "constructor"), queryValue),
          { maxLength: 4 },
        ).map((q) => (q.length === 0 ? "" : "?" + q.map(([k, v]) => `${k}=${v}`).join("&")))
        const method = fc.oneof(
          fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
          fc.stringMatching(/^[A-Z]{1,10}$/),
        )
        yield* check("pathsMethods", fc.tuple(method, path, query, fc.boolean()), 1500, async ([m, p, q, withKey]) => {
          const r = await rawRequest(control.url, {
            method: m,
            path: p + q,
            headers: withKey ? [auth(control)] : [],
            ...(m === "POST" || m === "PUT" ? { body: "{}" } : {}),
          })
          assert.isBelow(r.status, 500, `${m} ${p}${q}`)
          if (m === "HEAD") return // no body, by definition
          // Node's HTTP parser refuses methods it does not know (a bare 400) before the app sees them.
          if (!standardMethods.has(m) && r.status === 400 && r.body === "") return
          assertWellFormed(r, `${m} ${p}${q}`)
        })
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("pipelined garbage over raw TCP: no 5xx, and a normal request still works", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const piece = fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.constantFrom(
            "GET / HTTP/1.1\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{}",
            "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "GET /healthz HTTP/9.9\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
            "GET /healthz HTTP/1.1\r\n" + "X-Big: " + "a".repeat(20_000) + "\r\n\r\n",
            "\r\n\r\n\r\n",
            "GET /v1/sessions HTTP/1.1\r\nAuthorization: Bearer \u00ff\u00fe\r\n\r\n",
          ).map((s) => Buffer.from(s, "latin1")),
          fc.tuple(fc.stringMatching(/^[A-Z]{0,8}$/), fc.string({ maxLength: 40, unit: "binary" }))
            .map(([m, p]) => Buffer.from(`${m} ${p} HTTP/1.1\r\nHost: x\r\n\r\n`)),
        )
        yield* check("rawGarbage", fc.array(piece, { minLength: 1, maxLength: 5 }), 300, async (pieces) => {
          const statuses = await rawExchange(control.url, Buffer.concat(pieces), 3_000)
          for (const s of statuses) assert.isBelow(s, 500, `garbage got a ${s}`)
        })
        const health = yield* Effect.promise(() => rawRequest(control.url, { method: "GET", path: "/healthz" }))
        assert.strictEqual(health.status, 200)
        yield* Effect.promise(() => stillServes(control))
      }))

    it.effect("metrics stay bounded: fuzzed paths do not each become a route label", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const r = yield* Effect.promise(() =>
          rawRequest(control.url, { method: "GET", path: "/metrics", headers: [auth(control)] })
        )
        assert.strictEqual(r.status, 200)
        const routes = new Set(Array.from(r.body.matchAll(/route="((?:[^"\\]|\\.)*)"/g), (m) => m[1]))
        console.log(`metrics route labels: ${routes.size}`)
        assert.isBelow(routes.size, 40, `route labels: ${Array.from(routes).slice(0, 30).join(" ")}`)
      }))
  },
)
