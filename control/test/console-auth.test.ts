// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { asBrowser, loginWithKey, sessionCookie } from "./ConsoleClient.ts"
import { backends, call, type ControlHandle, script, startControl, TestControl, TestDatabase } from "./harness.ts"

const newKey = (control: ControlHandle, scopes: Array<string>) =>
  Effect.map(call(control, "POST", "/v1/keys", { body: { name: `console ${scopes}`, scopes } }), (r) => {
    assert.strictEqual(r.status, 201, r.text)
    return { secret: r.body.secret as string, id: r.body.key.id as string }
  })

/** Reads an SSE response with the cookie: the first frame, then (after `between`) the rest to its end. */
const eventsWithCookie = (control: ControlHandle, id: string, cookie: string, between: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const res = yield* Effect.promise(() =>
      fetch(`${control.url}/v1/sessions/${id}/events`, {
        headers: { cookie: `paws_session=${cookie}` },
        signal: AbortSignal.timeout(20_000),
      })
    )
    assert.strictEqual(res.status, 200)
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/)
    const reader = res.body!.getReader()
    let text = ""
    while (!text.includes("\n\n")) text += new TextDecoder().decode((yield* Effect.promise(() => reader.read())).value)
    const first = text
    yield* between
    while (true) {
      const chunk = yield* Effect.promise(() => reader.read())
      if (chunk.done) break
      text += new TextDecoder().decode(chunk.value)
    }
    const statuses = [...text.matchAll(/"status":"([a-z_]+)"/g)].map((m) => m[1])
    return { first, statuses }
  })

for (const backend of backends) {
  describe(`console sign-in with an API key (${backend.name})`, () => {
    layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("bad logins: a missing or blank key is a 400 naming `key`, a wrong one a 401", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            for (const body of [{}, { key: "" }, { key: "   " }, { key: 42 }]) {
              const r = yield* asBrowser(control, "POST", "/v1/auth/login", { body })
              assert.strictEqual(r.status, 400, r.text)
              assert.strictEqual(r.body._tag, "InvalidRequest")
              assert.include(r.body.issues.map((i: any) => i.path), "key")
              assert.isUndefined(sessionCookie(r.headers))
            }
            const wrong = yield* asBrowser(control, "POST", "/v1/auth/login", { body: { key: "paws_nope" } })
            assert.strictEqual(wrong.status, 401)
            assert.strictEqual(wrong.body._tag, "Unauthorized")
            assert.isUndefined(sessionCookie(wrong.headers))
            const me = yield* asBrowser(control, "GET", "/v1/auth/me")
            assert.strictEqual(me.status, 401)
            const bogus = yield* asBrowser(control, "GET", "/v1/auth/me", { cookie: "x".repeat(43) })
            assert.strictEqual(bogus.status, 401)
            const api = yield* asBrowser(control, "GET", "/v1/sessions", { cookie: "x".repeat(43) })
            assert.strictEqual(api.status, 401)
          }))

        it.effect("login sets an HttpOnly SameSite=Strict cookie; the API takes it with the key's scopes", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const writer = yield* newKey(control, ["sessions:write"])
            const { reply, cookie } = yield* loginWithKey(control, writer.secret)
            assert.strictEqual(reply.status, 200, reply.text)
            const header = sessionCookie(reply.headers)!.header
            assert.match(header, /; HttpOnly/)
            assert.match(header, /; SameSite=Strict/)
            assert.match(header, /; Path=\//)
            assert.match(header, /; Max-Age=43200/)
            assert.notMatch(header, /Secure/) // plain http, no https public URL
            assert.match(cookie!, /^[A-Za-z0-9_-]{43}$/)
            assert.notInclude(cookie!, writer.secret.slice(-43))
            assert.deepStrictEqual(
              { ...reply.body, csrfToken: undefined, expiresAt: undefined },
              {
                actor: `key:${writer.id}`,
                project: "default",
                scopes: ["sessions:write"],
                via: "key",
                csrfToken: undefined,
                expiresAt: undefined,
              },
            )
            const csrf: string = reply.body.csrfToken
            assert.isAbove(Date.parse(reply.body.expiresAt), Date.now() + 11 * 3600_000)

            const me = yield* asBrowser(control, "GET", "/v1/auth/me", { cookie })
            assert.strictEqual(me.status, 200)
            assert.deepStrictEqual(me.body, reply.body)
            assert.isUndefined(sessionCookie(me.headers))

            const list = yield* asBrowser(control, "GET", "/v1/sessions", { cookie })
            assert.strictEqual(list.status, 200, list.text)
            assert.isArray(list.body.sessions)

            const noCsrf = yield* asBrowser(control, "POST", "/v1/sessions", { cookie, body: script("echo hi") })
            assert.strictEqual(noCsrf.status, 403)
            assert.strictEqual(noCsrf.body._tag, "Forbidden")
            assert.include(noCsrf.body.message, "X-Paws-CSRF")
            const badCsrf = yield* asBrowser(control, "POST", "/v1/sessions", {
              cookie,
              csrf: csrf.slice(0, -2) + "xx",
              body: script("echo hi"),
            })
            assert.strictEqual(badCsrf.status, 403)
            const made = yield* asBrowser(control, "POST", "/v1/sessions", { cookie, csrf, body: script("echo hi") })
            assert.strictEqual(made.status, 202, made.text)
            const cancelled = yield* asBrowser(control, "DELETE", `/v1/sessions/${made.body.sessionId}`, {
              cookie,
              csrf,
            })
            assert.strictEqual(cancelled.status, 200, cancelled.text)
            assert.strictEqual(cancelled.body.status, "cancelled")

            // The key's scopes hold: sessions:write cannot list keys.
            const keys = yield* asBrowser(control, "GET", "/v1/keys", { cookie })
            assert.strictEqual(keys.status, 403)
            assert.strictEqual(keys.body.requiredScope, "admin")

            // The audit log names the key for changes made through the console.
            const audit = yield* call(control, "GET", `/v1/audit?actor=key:${writer.id}&action=api.sessions.*`)
            assert.strictEqual(audit.status, 200, audit.text)
            assert.deepStrictEqual(
              audit.body.entries.map((e: any) => [e.action, e.result]),
              [["api.sessions.create", "ok"], ["api.sessions.cancel", "ok"]],
            )
            // A Bearer request is unchanged by a cookie beside it: no CSRF header needed.
            const both = yield* call(control, "POST", "/v1/sessions", {
              body: script("echo both"),
              headers: { cookie: `paws_session=${cookie}` },
            })
            assert.strictEqual(both.status, 202, both.text)
          }))

        it.effect("SSE streams a session's events live with the cookie alone", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const { reply, cookie } = yield* loginWithKey(control, control.adminKey)
            const made = yield* call(control, "POST", "/v1/sessions", { body: script("sleep 100") })
            assert.strictEqual(made.status, 202, made.text)
            const id = made.body.sessionId
            const cancel = asBrowser(control, "DELETE", `/v1/sessions/${id}`, { cookie, csrf: reply.body.csrfToken })
              .pipe(Effect.map((r) => assert.strictEqual(r.status, 200, r.text)))
            const events = yield* eventsWithCookie(control, id, cookie!, cancel)
            assert.include(events.first, '"status":"pending"')
            assert.deepStrictEqual(events.statuses.at(-1), "cancelled")
          }))

        it.effect("the shell's WebSocket takes the cookie (same origin only)", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const { cookie } = yield* loginWithKey(control, control.adminKey)
            const path = "/v1/sessions/00000000-0000-4000-8000-000000000000/shell"
            const anonymous = yield* asBrowser(control, "GET", path)
            assert.strictEqual(anonymous.status, 401)
            // Past authentication: the session does not exist.
            const signedIn = yield* asBrowser(control, "GET", path, { cookie })
            assert.strictEqual(signedIn.status, 404, signedIn.text)
            const sameOrigin = yield* asBrowser(control, "GET", path, { cookie, headers: { origin: control.url } })
            assert.strictEqual(sameOrigin.status, 404, sameOrigin.text)
            const foreign = yield* asBrowser(control, "GET", path, {
              cookie,
              headers: { origin: "https://evil.example" },
            })
            assert.strictEqual(foreign.status, 401)
          }))

        it.effect("logout ends the sign-in and clears the cookie; a revoked key ends its sign-ins", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const first = yield* loginWithKey(control, control.adminKey)
            const out = yield* asBrowser(control, "POST", "/v1/auth/logout", { cookie: first.cookie })
            assert.strictEqual(out.status, 204)
            const cleared = sessionCookie(out.headers)!
            assert.strictEqual(cleared.value, "")
            assert.match(cleared.header, /Max-Age=0|Expires=Thu, 01 Jan 1970/)
            assert.strictEqual((yield* asBrowser(control, "GET", "/v1/auth/me", { cookie: first.cookie })).status, 401)
            const after = yield* asBrowser(control, "GET", "/v1/sessions", { cookie: first.cookie })
            assert.strictEqual(after.status, 401)
            // Logging out twice, or with no cookie, is harmless.
            assert.strictEqual((yield* asBrowser(control, "POST", "/v1/auth/logout")).status, 204)

            const reader = yield* newKey(control, ["read"])
            const second = yield* loginWithKey(control, reader.secret)
            assert.strictEqual((yield* asBrowser(control, "GET", "/v1/auth/me", { cookie: second.cookie })).status, 200)
            assert.strictEqual((yield* call(control, "DELETE", `/v1/keys/${reader.id}`)).status, 200)
            const me = yield* asBrowser(control, "GET", "/v1/auth/me", { cookie: second.cookie })
            assert.strictEqual(me.status, 401)
            assert.match(me.body.message, /revoked/)
            const list = yield* asBrowser(control, "GET", "/v1/sessions", { cookie: second.cookie })
            assert.strictEqual(list.status, 401)
            const revokedLogin = yield* loginWithKey(control, reader.secret)
            assert.strictEqual(revokedLogin.reply.status, 401)
          }))
      },
    )
  })
}

describe("console sign-in: TLS and expiry", () => {
  layer(backends[0].layer, { excludeTestServices: true, timeout: 60_000 })((it) => {
    it.effect("behind https the cookie is Secure; an expired sign-in is refused", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const control = yield* startControl(yield* db.fresh, {
          PAWS_CONSOLE_SESSION_TTL: "1 second",
          PAWS_PUBLIC_URL: "https://paws.example.test",
        })
        const { reply, cookie } = yield* loginWithKey(control, control.adminKey)
        assert.strictEqual(reply.status, 200, reply.text)
        const header = sessionCookie(reply.headers)!.header
        assert.match(header, /; Secure/)
        assert.match(header, /; Max-Age=1(;|$)/)
        // Secure: named __Host- (host-only, Path=/), so no sibling host (an exposed port's subdomain) can set it.
        assert.match(header, /^__Host-paws_session=/)
        assert.match(header, /; Path=\/(;|$)/)
        assert.notMatch(header, /Domain=/i)
        const cookieName = "__Host-paws_session"
        assert.strictEqual((yield* asBrowser(control, "GET", "/v1/auth/me", { cookie, cookieName })).status, 200)
        // Over TLS the plain name is not read, even with a good value (a tossed cookie could carry one).
        assert.strictEqual((yield* asBrowser(control, "GET", "/v1/auth/me", { cookie })).status, 401)
        // Wait past the expiry (the cookie's Max-Age tells the browser; control refuses by its own clock).
        yield* Effect.sleep(1500)
        const me = yield* asBrowser(control, "GET", "/v1/auth/me", { cookie, cookieName })
        assert.strictEqual(me.status, 401)
        assert.match(me.body.message, /expired/)
        assert.strictEqual((yield* asBrowser(control, "GET", "/v1/sessions", { cookie, cookieName })).status, 401)
      }).pipe(Effect.scoped))

    it.effect("a bad PAWS_CONSOLE_SESSION_TTL or PAWS_PUBLIC_URL stops control at start, naming it", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        for (
          const [name, value] of [["PAWS_CONSOLE_SESSION_TTL", "0 seconds"], ["PAWS_CONSOLE_SESSION_TTL", "soon"], [
            "PAWS_PUBLIC_URL",
            "paws.example",
          ]]
        ) {
          const exit = yield* Effect.exit(startControl(yield* db.fresh, { [name!]: value! }).pipe(Effect.scoped))
          assert.isTrue(Exit.isFailure(exit))
          assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), name!)
        }
      }).pipe(Effect.scoped))
  })
})
