// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createServer, get as httpGet } from "node:http"
import type { AddressInfo } from "node:net"
import { loginWithKey } from "./ConsoleClient.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, script, startControl, TestDatabase, waitForSession } from "./harness.ts"
import { BrowserJar } from "./support/BrowserJar.ts"
import { startTestProvider } from "./support/OidcTestProvider.ts"

/** The guest's web app, stood in for by a loopback server that echoes what reached it. */
const startEchoApp = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ url: string; close: () => void }>((ok) => {
      const server = createServer((req, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(
          JSON.stringify({
            path: req.url,
            cookie: req.headers["cookie"] ?? null,
            csrf: req.headers["x-paws-csrf"] ?? null,
          }),
        )
      })
      server.listen(0, "127.0.0.1", () =>
        ok({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          close: () => server.close(),
        }))
    })
  ),
  (app) => Effect.sync(app.close),
)

/** Control with single sign-on, a node whose sessions' ports reach the echo app, and one running session. */
class SsoWorld extends Context.Service<SsoWorld, {
  readonly control: ControlHandle
  readonly sessionId: string
  /** The `sso` exposure's path-form URL, and a `public` one's. */
  readonly ssoUrl: string
  readonly publicUrl: string
}>()("paws/test/SsoWorld") {
  static readonly layer = Layer.effect(
    SsoWorld,
    Effect.gen(function* () {
      const db = yield* TestDatabase
      const app = yield* startEchoApp
      const provider = yield* startTestProvider({
        alice: { email: "alice@example.test", groups: ["paws-devs"] },
        bob: { email: "bob@example.test", groups: ["staff"] },
      })
      const control = yield* startControl(yield* db.fresh, {
        PAWS_OIDC_ISSUER: provider.issuer,
        PAWS_OIDC_CLIENT_ID: provider.clientId,
        PAWS_OIDC_CLIENT_SECRET: provider.clientSecret,
        PAWS_OIDC_SCOPE_MAP: "groups:paws-devs=sessions:write",
        PAWS_OIDC_REQUEST_SCOPES: "openid email groups",
        PAWS_TEST_OIDC_ALLOW_HTTP: "true",
      })
      provider.register([`${control.url}/v1/auth/oidc/callback`])
      yield* registerFakeNode(control.registry, { id: "n-sso", maxConcurrent: 2, portTarget: app.url })
      const created = yield* call(control, "POST", "/v1/sessions", { body: script("hang") })
      const sessionId = created.body.sessionId
      yield* waitForSession(control, sessionId, (s) => s.status === "running")
      const expose = (access: string) =>
        Effect.map(call(control, "POST", `/v1/sessions/${sessionId}/ports`, { body: { port: 8080, access } }), (r) => {
          assert.strictEqual(r.status, 201, r.text)
          return r.body.url as string
        })
      return { control, sessionId, ssoUrl: yield* expose("sso"), publicUrl: yield* expose("public") }
    }),
  )
}

for (const backend of backends) {
  describe(`exposed ports with sso access (${backend.name})`, () => {
    layer(SsoWorld.layer.pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })((it) => {
      it.effect("a browser without a sign-in goes through the OIDC login and comes back to the port", () =>
        Effect.gen(function* () {
          const { control, ssoUrl } = yield* SsoWorld
          assert.match(ssoUrl, /\/p\/[a-z0-9]{24}\/$/)
          const target = `${ssoUrl}deep/page?q=1`
          const result = yield* Effect.promise(async () => {
            const jar = new BrowserJar()
            const first = await jar.request(target)
            const login = await jar.navigate(target)
            const consent = await jar.submitForm(login, { login: "alice", password: "x" })
            const landed = await jar.submitForm(consent)
            const again = await jar.request(target)
            const cookie = jar.cookie(new URL(control.url).host, "paws_session")
            await jar.request(`${control.url}/v1/auth/logout`, { method: "POST" })
            const afterLogout = await jar.request(target)
            return { first, landed, again, cookie, afterLogout }
          })
          assert.strictEqual(result.first.status, 302)
          const location = new URL(result.first.headers.get("location")!, control.url)
          assert.strictEqual(location.pathname, "/v1/auth/oidc/login")
          assert.strictEqual(location.searchParams.get("returnTo"), new URL(target).pathname + "?q=1")
          assert.strictEqual(result.landed.status, 200, result.landed.text)
          assert.strictEqual(result.landed.url, target)
          const echoed = JSON.parse(result.landed.text)
          assert.strictEqual(echoed.path, "/deep/page?q=1")
          assert.isDefined(result.cookie)
          // The console's cookie is paws's, never the guest's.
          assert.notInclude(String(echoed.cookie), "paws_session")
          assert.strictEqual(result.again.status, 200)
          // Signed out: the port asks for a sign-in again.
          assert.strictEqual(result.afterLogout.status, 302)
        }))

      it.effect("a console sign-in without read on the session's project gets 403; with it, through", () =>
        Effect.gen(function* () {
          const { control, ssoUrl } = yield* SsoWorld
          assert.strictEqual((yield* call(control, "POST", "/v1/projects", { body: { id: "beta" } })).status, 201)
          const other = yield* call(control, "POST", "/v1/keys", {
            body: { name: "beta reader", scopes: ["read"], project: "beta" },
          })
          const outsider = yield* loginWithKey(control, other.body.secret)
          const refused = yield* Effect.promise(() =>
            fetch(ssoUrl, { headers: { cookie: `paws_session=${outsider.cookie}` }, redirect: "manual" })
          )
          assert.strictEqual(refused.status, 403)
          assert.include(yield* Effect.promise(() => refused.text()), "needs scope read on project default")

          const insider = yield* loginWithKey(control, control.adminKey)
          const through = yield* Effect.promise(() =>
            fetch(ssoUrl, { headers: { cookie: `paws_session=${insider.cookie}; app=1` }, redirect: "manual" })
          )
          assert.strictEqual(through.status, 200)
          const echoed = yield* Effect.promise(() => through.json() as Promise<any>)
          assert.strictEqual(echoed.cookie, "app=1") // the app's own cookie goes on, paws's does not
        }))

      it.effect("a user the scope map gives nothing never reaches the port", () =>
        Effect.gen(function* () {
          const { ssoUrl } = yield* SsoWorld
          const landed = yield* Effect.promise(async () => {
            const jar = new BrowserJar()
            const login = await jar.navigate(ssoUrl)
            const consent = await jar.submitForm(login, { login: "bob", password: "x" })
            return jar.submitForm(consent)
          })
          assert.strictEqual(landed.status, 403)
          assert.include(landed.text, "has no paws scope")
        }))

      it.effect("other access modes never pass the console cookie or CSRF header on to the guest", () =>
        Effect.gen(function* () {
          const { control, publicUrl } = yield* SsoWorld
          const { cookie, reply } = yield* loginWithKey(control, control.adminKey)
          const res = yield* Effect.promise(() =>
            fetch(publicUrl, {
              headers: { cookie: `theme=dark; paws_session=${cookie}`, "x-paws-csrf": reply.body.csrfToken },
            }).then((r) => r.json() as Promise<any>)
          )
          assert.deepStrictEqual({ cookie: res.cookie, csrf: res.csrf }, { cookie: "theme=dark", csrf: null })
        }))
    })
  })
}

/** One request to control as if to the host `host` (fetch sets Host itself, so node:http). */
const asHost = (control: ControlHandle, host: string, path: string, cookie?: string) =>
  Effect.promise(() =>
    new Promise<{ status: number; location: string | null; cookies: Array<string>; text: string }>((ok, fail) => {
      const headers = { host, ...(cookie === undefined ? {} : { cookie }) }
      const req = httpGet(control.url + path, { headers }, (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk) => (text += chunk))
        res.on("end", () =>
          ok({
            status: res.statusCode!,
            location: res.headers.location ?? null,
            cookies: res.headers["set-cookie"] ?? [],
            text,
          }))
      })
      req.on("error", fail)
    })
  )

for (const backend of backends) {
  describe(`exposed ports with sso access, host form (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 120_000 })((it) => {
      it.effect("the host form fetches a one-time grant from control, where the console cookie is", () =>
        Effect.gen(function* () {
          const db = yield* TestDatabase
          const app = yield* startEchoApp
          const control = yield* startControl(yield* db.fresh, {
            PAWS_PUBLIC_DOMAIN: "ports.test",
            PAWS_PUBLIC_URL: "http://paws.test",
          })
          yield* registerFakeNode(control.registry, { id: "n-host", maxConcurrent: 1, portTarget: app.url })
          const id = (yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId
          yield* waitForSession(control, id, (s) => s.status === "running")
          const exposed = yield* call(control, "POST", `/v1/sessions/${id}/ports`, {
            body: { port: 8080, access: "sso" },
          })
          assert.strictEqual(exposed.status, 201, exposed.text)
          const portHost = new URL(exposed.body.hostUrl).host
          assert.match(portHost, /^8080-[a-z0-9]{24}\.ports\.test$/)
          const exposure = portHost.split(".")[0]!.slice("8080-".length)

          const anonymous = yield* asHost(control, portHost, "/x?y=1")
          assert.strictEqual(anonymous.status, 302)
          const toControl = new URL(anonymous.location!)
          assert.strictEqual(toControl.origin, "http://paws.test")
          assert.strictEqual(toControl.pathname, "/v1/auth/port-grant")
          assert.strictEqual(toControl.searchParams.get("next"), "/x?y=1")
          const grantPath = toControl.pathname + toControl.search

          // At control: no sign-in (and no OIDC here) is a 401; another project's is a 403.
          assert.strictEqual((yield* asHost(control, "paws.test", grantPath)).status, 401)
          yield* call(control, "POST", "/v1/projects", { body: { id: "beta" } })
          const betaKey = yield* call(control, "POST", "/v1/keys", {
            body: { name: "b", scopes: ["read"], project: "beta" },
          })
          const outsider = yield* loginWithKey(control, betaKey.body.secret)
          const refused = yield* asHost(control, "paws.test", grantPath, `paws_session=${outsider.cookie}`)
          assert.strictEqual(refused.status, 403)
          const insider = yield* loginWithKey(control, control.adminKey)
          const granted = yield* asHost(control, "paws.test", grantPath, `paws_session=${insider.cookie}`)
          assert.strictEqual(granted.status, 302, granted.text)
          const back = new URL(granted.location!)
          assert.strictEqual(back.host, portHost)
          assert.strictEqual(back.pathname, "/x")
          const handed = back.searchParams.get("paws_grant")!

          const traded = yield* asHost(control, portHost, back.pathname + back.search)
          assert.strictEqual(traded.status, 303)
          assert.strictEqual(traded.location, "/x?y=1")
          const portCookie = traded.cookies.find((c) => c.startsWith(`paws_port_${exposure}=`))!.split(";")[0]!
          const page = yield* asHost(control, portHost, "/x?y=1", `${portCookie}; app=2`)
          assert.strictEqual(page.status, 200, page.text)
          assert.deepStrictEqual(JSON.parse(page.text).path, "/x?y=1")
          assert.deepStrictEqual(JSON.parse(page.text).cookie, "app=2")
          // The handed grant was spent: used again, it sends the browser back to control.
          const replay = yield* asHost(control, portHost, `/x?paws_grant=${handed}`)
          assert.strictEqual(replay.status, 302)
        }).pipe(Effect.scoped))
    })
  })
}
