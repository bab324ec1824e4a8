// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { parseScopeMap, scopesFor } from "../src/oidc/OidcScopeMap.ts"
import { asBrowser } from "./ConsoleClient.ts"
import { backends, call, type ControlHandle, script, startControl, TestDatabase } from "./harness.ts"
import { BrowserJar } from "./support/BrowserJar.ts"
import { startTestProvider, type TestProvider } from "./support/OidcTestProvider.ts"

const accounts = {
  alice: { email: "alice@example.test", groups: ["paws-admins", "staff"] },
  dave: { email: "dave@example.test", groups: ["paws-devs"] },
  bob: { email: "bob@example.test", groups: ["staff"] },
}
const scopeMap = "groups:paws-admins=admin, groups:paws-devs=sessions:write"

const oidcEnv = (provider: TestProvider) => ({
  PAWS_OIDC_ISSUER: provider.issuer,
  PAWS_OIDC_CLIENT_ID: provider.clientId,
  PAWS_OIDC_SCOPE_MAP: scopeMap,
  PAWS_OIDC_REQUEST_SCOPES: "openid email groups",
  PAWS_TEST_OIDC_ALLOW_HTTP: "true",
})

/** A provider and two controls signing in through it: `main` (secret from a file) and `brief` (1 s sign-ins). */
class OidcWorld extends Context.Service<OidcWorld, {
  readonly provider: TestProvider
  readonly main: ControlHandle
  readonly brief: ControlHandle
}>()("paws/test/OidcWorld") {
  static readonly layer = Layer.effect(
    OidcWorld,
    Effect.gen(function* () {
      const db = yield* TestDatabase
      const provider = yield* startTestProvider(accounts)
      const mainStore = yield* db.fresh
      const secretFile = join(mainStore.dataDir, "..", `oidc-secret-${process.pid}-${Date.now()}`)
      writeFileSync(secretFile, provider.clientSecret + "\n", { mode: 0o600 })
      const main = yield* startControl(mainStore, { ...oidcEnv(provider), PAWS_OIDC_CLIENT_SECRET_FILE: secretFile })
      const brief = yield* startControl(yield* db.fresh, {
        ...oidcEnv(provider),
        PAWS_OIDC_CLIENT_SECRET: provider.clientSecret,
        PAWS_CONSOLE_SESSION_TTL: "1 second",
      })
      provider.register([main, brief].map((c) => `${c.url}/v1/auth/oidc/callback`))
      return { provider, main, brief }
    }),
  )
}

/** Signs `user` in at `control` like a browser: login, the provider's login and consent forms, back to `returnTo`. */
const signIn = (control: ControlHandle, user: string, returnTo = "/v1/auth/me") =>
  Effect.promise(async () => {
    const jar = new BrowserJar()
    const login = await jar.navigate(`${control.url}/v1/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`)
    assert.strictEqual(login.status, 200, login.text)
    assert.include(login.text, 'name="login"') // the provider's sign-in form
    const consent = await jar.submitForm(login, { login: user, password: "any password" })
    assert.include(consent.text, 'value="consent"', consent.text.slice(0, 300))
    const landed = await jar.submitForm(consent)
    const host = new URL(control.url).host
    return { jar, landed, cookie: jar.cookie(host, "paws_session"), pending: jar.cookie(host, "paws_oidc") }
  })

for (const backend of backends) {
  describe(`console single sign-on through a real OpenID provider (${backend.name})`, () => {
    layer(OidcWorld.layer.pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("an admin-group user signs in (code + PKCE), acts as admin, is audited by subject and email", () =>
          Effect.gen(function* () {
            const { main } = yield* OidcWorld
            assert.deepStrictEqual((yield* asBrowser(main, "GET", "/v1/auth/oidc")).body, { enabled: true })
            const { landed, cookie, pending } = yield* signIn(main, "alice")
            assert.strictEqual(landed.status, 200, landed.text)
            assert.strictEqual(landed.url, `${main.url}/v1/auth/me`)
            const me = JSON.parse(landed.text)
            assert.deepStrictEqual({ ...me, csrfToken: undefined, expiresAt: undefined }, {
              actor: "oidc:alice",
              email: "alice@example.test",
              project: "default",
              scopes: ["admin"],
              via: "oidc",
              csrfToken: undefined,
              expiresAt: undefined,
            })
            assert.isDefined(cookie)
            assert.isUndefined(pending) // the pending login's cookie is spent
            const keys = yield* asBrowser(main, "GET", "/v1/keys", { cookie })
            assert.strictEqual(keys.status, 200, keys.text)
            const made = yield* asBrowser(main, "POST", "/v1/sessions", {
              cookie,
              csrf: me.csrfToken,
              body: script("echo sso"),
            })
            assert.strictEqual(made.status, 202, made.text)

            const audit = yield* call(main, "GET", "/v1/audit?actor=oidc:alice")
            assert.strictEqual(audit.status, 200, audit.text)
            const rows = audit.body.entries.map((e: any) => [e.action, e.result, e.detail?.email])
            assert.deepInclude(rows, ["console.login", "ok", "alice@example.test"])
            assert.deepInclude(rows, ["api.sessions.create", "ok", "alice@example.test"])
            const status = yield* call(main, "GET", `/v1/audit?session=${made.body.sessionId}&action=session.*`)
            assert.strictEqual(status.body.entries[0]?.actor, "oidc:alice", status.text)

            const out = yield* asBrowser(main, "POST", "/v1/auth/logout", { cookie })
            assert.strictEqual(out.status, 204)
            const loggedOut = yield* call(main, "GET", "/v1/audit?actor=oidc:alice&action=console.logout")
            assert.deepStrictEqual(loggedOut.body.entries.map((e: any) => e.detail.email), ["alice@example.test"])
            assert.strictEqual((yield* asBrowser(main, "GET", "/v1/auth/me", { cookie })).status, 401)
            assert.strictEqual((yield* asBrowser(main, "GET", "/v1/keys", { cookie })).status, 401)
          }))

        it.effect("claims map to scopes: a devs-group user may run sessions but not manage keys", () =>
          Effect.gen(function* () {
            const { main } = yield* OidcWorld
            const { landed, cookie } = yield* signIn(main, "dave")
            assert.strictEqual(landed.status, 200, landed.text)
            assert.deepStrictEqual(JSON.parse(landed.text).scopes, ["sessions:write"])
            assert.strictEqual((yield* asBrowser(main, "GET", "/v1/sessions", { cookie })).status, 200)
            const keys = yield* asBrowser(main, "GET", "/v1/keys", { cookie })
            assert.strictEqual(keys.status, 403)
            assert.strictEqual(keys.body.requiredScope, "admin")
          }))

        it.effect("a user in no mapped group gets a 403 page at the callback and no sign-in", () =>
          Effect.gen(function* () {
            const { main } = yield* OidcWorld
            const { landed, cookie } = yield* signIn(main, "bob")
            assert.strictEqual(landed.status, 403)
            assert.match(landed.headers.get("content-type") ?? "", /text\/html/)
            assert.include(landed.text, "bob@example.test signed in, but has no paws scope")
            assert.include(landed.text, "groups:paws-admins")
            assert.isUndefined(cookie)
            const audit = yield* call(main, "GET", "/v1/audit?actor=oidc:bob")
            assert.deepStrictEqual(
              audit.body.entries.map((e: any) => [e.action, e.result, e.detail?.email]),
              [["console.login", "Forbidden", "bob@example.test"]],
            )
          }))

        it.effect("returnTo stays on control; a callback without its login, or forged, is refused", () =>
          Effect.gen(function* () {
            const { main } = yield* OidcWorld
            for (const away of ["https://evil.example/x", "//evil.example/x", "/\\evil.example"]) {
              const { landed } = yield* signIn(main, "dave", away)
              assert.strictEqual(new URL(landed.url).origin, main.url, away)
              assert.strictEqual(new URL(landed.url).pathname, "/", away)
            }
            const stray = yield* asBrowser(main, "GET", "/v1/auth/oidc/callback?code=abc&state=def")
            assert.strictEqual(stray.status, 400)
            assert.include(stray.text, "sign in again")
            const denied = yield* asBrowser(main, "GET", "/v1/auth/oidc/callback?error=access_denied", {
              headers: {
                cookie: `paws_oidc=${Buffer.from(JSON.stringify({ state: "s", verifier: "v" })).toString("base64url")}`,
              },
            })
            assert.strictEqual(denied.status, 403)
            assert.include(denied.text, "access_denied")
          }))

        it.effect("an expired single-sign-on cookie is refused", () =>
          Effect.gen(function* () {
            const { brief } = yield* OidcWorld
            const { landed, cookie } = yield* signIn(brief, "alice")
            assert.strictEqual(landed.status, 200, landed.text)
            yield* Effect.sleep(1500) // past the 1 s PAWS_CONSOLE_SESSION_TTL
            const me = yield* asBrowser(brief, "GET", "/v1/auth/me", { cookie })
            assert.strictEqual(me.status, 401)
            assert.match(me.body.message, /expired/)
            assert.strictEqual((yield* asBrowser(brief, "GET", "/v1/sessions", { cookie })).status, 401)
          }))
      },
    )
  })
}

describe("single sign-on settings", () => {
  it("PAWS_OIDC_SCOPE_MAP: CLAIM:VALUE=SCOPE[+SCOPE…], matched against string and list claims", () => {
    const rules = parseScopeMap("groups:paws-devs=sessions:write+approve, hd:example.com=read")
    assert.notStrictEqual(typeof rules, "string")
    if (typeof rules === "string") return
    assert.deepStrictEqual(scopesFor(rules, { groups: ["x", "paws-devs"] }), ["sessions:write", "approve"])
    assert.deepStrictEqual(scopesFor(rules, { hd: "example.com" }), ["read"])
    assert.deepStrictEqual(scopesFor(rules, { groups: "paws-devs-2" }), [])
    assert.deepStrictEqual(scopesFor(parseScopeMap("a:b=admin+read") as any, { a: "b" }), ["admin"])
    for (const bad of ["", "groups=admin", "groups:x=root", "groups:x=", ":x=admin"]) {
      assert.isString(parseScopeMap(bad), bad)
    }
  })
})

describe("single sign-on settings at start", () => {
  layer(backends[0].layer, { excludeTestServices: true, timeout: 60_000 })((it) => {
    it.effect("bad single-sign-on settings stop control at start, naming the setting", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const base = {
          PAWS_OIDC_ISSUER: "https://id.example.test",
          PAWS_OIDC_CLIENT_ID: "paws",
          PAWS_OIDC_SCOPE_MAP: "groups:a=admin",
        }
        const cases: Array<[string, Record<string, string>]> = [
          ["PAWS_OIDC_SCOPE_MAP", { ...base, PAWS_OIDC_SCOPE_MAP: "groups:a=root" }],
          ["PAWS_OIDC_SCOPE_MAP", { ...base, PAWS_OIDC_SCOPE_MAP: "" }],
          ["PAWS_OIDC_CLIENT_ID", { ...base, PAWS_OIDC_CLIENT_ID: "" }],
          ["PAWS_OIDC_ISSUER", { ...base, PAWS_OIDC_ISSUER: "http://id.example.test" }],
          ["PAWS_OIDC_CLIENT_SECRET_FILE", { ...base, PAWS_OIDC_CLIENT_SECRET_FILE: "/nonexistent/secret" }],
        ]
        for (const [name, env] of cases) {
          const exit = yield* Effect.exit(startControl(yield* db.fresh, env).pipe(Effect.scoped))
          assert.isTrue(Exit.isFailure(exit), name)
          assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), name)
        }
        // Without an issuer single sign-on is off, and says so.
        const off = yield* startControl(yield* db.fresh)
        assert.deepStrictEqual((yield* asBrowser(off, "GET", "/v1/auth/oidc")).body, { enabled: false })
        const login = yield* asBrowser(off, "GET", "/v1/auth/oidc/login")
        assert.strictEqual(login.status, 404)
        assert.include(login.text, "PAWS_OIDC_ISSUER")
      }).pipe(Effect.scoped))
  })
})
