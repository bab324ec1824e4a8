// deno-lint-ignore-file no-explicit-any -- the page reports loosely typed JSON
import { afterAll, assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { Browser, Page } from "playwright-core"
import { WebSocketServer } from "ws"
import { ensureConsoleBuilt } from "../console/scripts/ensure-built.ts"
import { registerFakeNode } from "../../control/test/FakeNode.ts"
import { call, pgliteBackend, script, startControl, TestDatabase } from "../../control/test/harness.ts"
import { launchChromium } from "./support/Browser.ts"

// A hostile guest page, served through each access mode of a path-form exposure in real Chromium
// whose user is signed in to the console: it must not get the console's powers, toss cookies at
// control, or read the console; its own subresources and WebSocket still work.

let launched: Promise<Browser> | undefined
const browser = () => (launched ??= launchChromium())
afterAll(async () => {
  if (launched !== undefined) await (await launched).close()
})

/** What the guest page's script tries, run in the page; it writes its findings as JSON into #out. */
const attackScript = `
const q = new URLSearchParams(location.search)
const control = q.get("control")
const stolenCsrf = q.get("csrf")
const out = {}
const attempt = async (name, f) => {
  try { out[name] = await f() } catch (e) { out[name] = "blocked: " + e.name }
}
const spec = JSON.stringify({ workload: { type: "script", script: "echo pwned" } })
await attempt("meHere", async () => { const r = await fetch("/v1/auth/me"); return r.status + " " + (await r.text()).slice(0, 80) })
await attempt("meControl", async () => {
  const r = await fetch(control + "/v1/auth/me", { credentials: "include" })
  return "read " + (await r.text())
})
await attempt("postWithCsrf", async () => {
  const r = await fetch(control + "/v1/sessions", {
    method: "POST", credentials: "include", body: spec,
    headers: { "content-type": "application/json", "x-paws-csrf": stolenCsrf },
  })
  return "status " + r.status
})
await attempt("postSimple", async () => {
  await fetch(control + "/v1/sessions", { method: "POST", mode: "no-cors", credentials: "include", body: spec })
  return "sent"
})
await attempt("iframe", () => new Promise((ok) => {
  const frame = document.createElement("iframe")
  frame.src = control + "/"
  frame.onload = () => {
    try {
      ok(frame.contentDocument === null ? "blocked: no document" : "read " + frame.contentDocument.body.innerHTML)
    } catch (e) { ok("blocked: " + e.name) }
  }
  document.body.append(frame)
}))
await attempt("shell", () => new Promise((ok) => {
  const ws = new WebSocket(control.replace(/^http/, "ws") + "/v1/sessions/" + q.get("session") + "/shell")
  ws.onopen = () => { ok("opened"); ws.close() }
  ws.onerror = () => ok("refused")
}))
await attempt("ownFetch", async () => (await fetch("data.json")).json())
await attempt("socket", () => new Promise((ok, fail) => {
  const ws = new WebSocket(location.href.replace(/^http/, "ws").replace(/[?#].*$/, "") + "ws")
  ws.onopen = () => ws.send("ping")
  ws.onmessage = (m) => { ok(m.data); ws.close() }
  ws.onerror = () => fail(new Error("socket"))
}))
out.style = getComputedStyle(document.body).backgroundColor
out.image = document.getElementById("img").naturalWidth
document.getElementById("out").textContent = JSON.stringify(out)
`

/** The guest's web app: a page with a stylesheet, an image, the script above, JSON and a WebSocket echo. */
const startGuestApp = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ url: string; close: () => void }>((ok) => {
      const server = createServer((req, res) => {
        const path = new URL(req.url ?? "/", "http://guest").pathname
        if (path === "/") {
          res.writeHead(200, {
            "content-type": "text/html; charset=utf-8",
            "set-cookie": [
              "paws_session=tossed; Path=/",
              "__Host-paws_session=tossed; Path=/; Secure",
              "paws_port_aaaaaaaaaaaaaaaaaaaaaaaa=tossed; Path=/",
              "wide=1; Domain=127.0.0.1; Path=/",
              "theme=dark; Path=/",
            ],
          })
          res.end(
            `<!doctype html><link rel="stylesheet" href="style.css"><img id="img" src="pixel.svg">` +
              `<pre id="out"></pre><script type="module" src="app.js"></script>`,
          )
        } else if (path === "/style.css") {
          res.writeHead(200, { "content-type": "text/css" }).end("body { background: rgb(1, 2, 3) }")
        } else if (path === "/pixel.svg") {
          res.writeHead(200, { "content-type": "image/svg+xml" })
            .end(`<svg xmlns="http://www.w3.org/2000/svg" width="3" height="3"><rect width="3" height="3"/></svg>`)
        } else if (path === "/app.js") {
          res.writeHead(200, { "content-type": "text/javascript" }).end(attackScript)
        } else if (path === "/data.json") {
          res.writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ cookie: req.headers["cookie"] ?? null }))
        } else {
          res.writeHead(404).end()
        }
      })
      const sockets = new WebSocketServer({ server, path: "/ws" })
      sockets.on("connection", (ws) => ws.on("message", (m) => ws.send(`echo:${String(m)}`)))
      server.listen(0, "127.0.0.1", () =>
        ok({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          close: () => (sockets.close(), server.close()),
        }))
    })
  ),
  (app) => Effect.sync(app.close),
)

/** Opens `url` (the page then runs its script) and returns what the script found. */
const findings = async (page: Page, url: string) => {
  await page.goto(url)
  await page.waitForFunction(() => document.getElementById("out")?.textContent !== "")
  return JSON.parse((await page.textContent("#out"))!)
}

describe("exposed guest pages are isolated from the console (Chromium)", () => {
  const built = Layer.effectDiscard(Effect.promise(() => ensureConsoleBuilt()))
  layer(Layer.merge(built, pgliteBackend), { excludeTestServices: true, timeout: 180_000 })((it) => {
    it.effect("public, token, pin and sso pages work but cannot act as the signed-in console user", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const app = yield* startGuestApp
        const control = yield* startControl(yield* db.fresh)
        yield* registerFakeNode(control.registry, { id: "n-iso", maxConcurrent: 2, portTarget: app.url })
        const sessionId = (yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId
        while ((yield* call(control, "GET", `/v1/sessions/${sessionId}`)).body.status !== "running") {
          yield* Effect.sleep(25)
        }
        const expose = (access: string) =>
          Effect.map(
            call(control, "POST", `/v1/sessions/${sessionId}/ports`, { body: { port: 8080, access } }),
            (r) => {
              assert.strictEqual(r.status, 201, r.text)
              return r.body as { url: string; token?: string; pin?: string }
            },
          )
        const exposed = {
          public: yield* expose("public"),
          token: yield* expose("token"),
          pin: yield* expose("pin"),
          sso: yield* expose("sso"),
        }
        // Path-form URLs are on another origin than control's.
        for (const e of Object.values(exposed)) {
          assert.notStrictEqual(new URL(e.url).origin, control.url)
          assert.strictEqual(new URL(e.url).hostname, new URL(control.url).hostname)
        }
        const sessionsBefore = (yield* call(control, "GET", "/v1/sessions")).body.sessions.length

        const context = yield* Effect.acquireRelease(
          Effect.promise(async () => (await browser()).newContext()),
          (c) => Effect.promise(() => c.close()),
        )
        const page = yield* Effect.promise(() => context.newPage())
        // The console sign-in, in the same browser.
        const identity = yield* Effect.promise(async () => {
          await page.goto(`${control.url}/`)
          return page.evaluate(async (key) => {
            const r = await fetch("/v1/auth/login", {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ key }),
            })
            return r.json() as Promise<{ csrfToken: string; actor: string }>
          }, control.adminKey)
        })
        assert.isString(identity.csrfToken)
        const query = `control=${encodeURIComponent(control.url)}&csrf=${identity.csrfToken}&session=${sessionId}`

        const results: Record<string, any> = {}
        results.public = yield* Effect.promise(() => findings(page, `${exposed.public.url}?${query}`))
        results.token = yield* Effect.promise(() =>
          findings(page, `${exposed.token.url}?token=${exposed.token.token}&${query}`)
        )
        results.pin = yield* Effect.promise(async () => {
          await page.goto(exposed.pin.url)
          await page.fill("input[name=pin]", exposed.pin.pin!)
          await Promise.all([page.waitForURL(exposed.pin.url), page.click("button")])
          return findings(page, `${exposed.pin.url}?${query}`)
        })
        results.sso = yield* Effect.promise(() => findings(page, `${exposed.sso.url}?${query}`))

        for (const [access, found] of Object.entries(results)) {
          const where = `${access}: ${JSON.stringify(found)}`
          // The page works: stylesheet, image, its own JSON (with its own cookie) and its WebSocket.
          assert.strictEqual(found.style, "rgb(1, 2, 3)", where)
          assert.strictEqual(found.image, 3, where)
          assert.strictEqual(found.socket, "echo:ping", where)
          assert.strictEqual(found.ownFetch.cookie, "theme=dark", where)
          // Control's API is not on the page's origin, and not readable from it.
          assert.match(found.meHere, /^404 /, where)
          assert.strictEqual(found.meControl, "blocked: TypeError", where)
          // A POST with a stolen CSRF token needs a preflight, which control does not answer.
          assert.strictEqual(found.postWithCsrf, "blocked: TypeError", where)
          assert.strictEqual(found.postSimple, "sent", where) // sent, but refused: no CSRF header (below)
          // The shell WebSocket (no CORS for sockets) refuses the cookie from another origin.
          assert.strictEqual(found.shell, "refused", where)
          // The console cannot be read in a frame.
          assert.match(found.iframe, /^blocked: /, where)
        }
        // Nothing was created by the guest's requests.
        const sessionsAfter = (yield* call(control, "GET", "/v1/sessions")).body.sessions.length
        assert.strictEqual(sessionsAfter, sessionsBefore)

        // No cookie tossed at control: only the app's own, under its exposure's path.
        const cookies = yield* Effect.promise(() => context.cookies())
        assert.deepStrictEqual(cookies.filter((c) => c.value === "tossed"), [])
        assert.deepStrictEqual(cookies.filter((c) => c.name === "wide"), [])
        const themes = cookies.filter((c) => c.name === "theme").map((c) => c.path).sort()
        assert.deepStrictEqual(
          themes,
          Object.values(exposed).map((e) => new URL(e.url).pathname.replace(/\/$/, "/")).sort(),
        )

        // The console sign-in still works in the same browser, CSRF and all.
        const still = yield* Effect.promise(async () => {
          await page.goto(`${control.url}/`)
          return page.evaluate(async ({ csrf, session }) => {
            const me = await fetch("/v1/auth/me").then((r) => r.json())
            const cancel = await fetch(location.origin + "/v1/sessions?limit=1").then((r) => r.status)
            const post = await fetch("/v1/sessions", {
              method: "POST",
              headers: { "content-type": "application/json", "x-paws-csrf": csrf },
              body: JSON.stringify({ workload: { type: "script", script: "echo console" } }),
            })
            // The same shell WebSocket the guest was refused opens from the console's own origin.
            const shell = await new Promise((ok) => {
              const ws = new WebSocket(location.origin.replace(/^http/, "ws") + `/v1/sessions/${session}/shell`)
              ws.onopen = () => (ok("opened"), ws.close())
              ws.onerror = () => ok("refused")
            })
            return { actor: me.actor, csrf: me.csrfToken, list: cancel, post: post.status, shell }
          }, { csrf: identity.csrfToken, session: sessionId })
        })
        assert.deepStrictEqual(still, {
          actor: identity.actor,
          csrf: identity.csrfToken,
          list: 200,
          post: 202,
          shell: "opened",
        })
      }).pipe(Effect.scoped))
  })
})
