import { afterAll, assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Browser, BrowserContext, Page } from "playwright-core"
import { ensureConsoleBuilt } from "../console/scripts/ensure-built.ts"
import { type FakeNode, registerFakeNode } from "../../control/test/FakeNode.ts"
import {
  call,
  type ControlHandle,
  pgliteBackend,
  script,
  startControl,
  TestControl,
  TestDatabase,
} from "../../control/test/harness.ts"
import { startTestProvider } from "../../control/test/support/OidcTestProvider.ts"
import { launchChromium, pixelStats, screenshotDir } from "./support/Browser.ts"

// The web console in real Chromium against a real control (HTTP, PGlite). Sessions run on the
// in-process FakeNode, which speaks the real node RPC: `chatty hang` streams a stdout line every
// 100 ms until cancelled, so the page shows output arriving live without booting a VM.

const shots = screenshotDir("console")

/** One Chromium for the file's tests (each gets its own context: its own cookies). */
let launched: Promise<Browser> | undefined
const browser = () => (launched ??= launchChromium())
afterAll(async () => {
  if (launched !== undefined) await (await launched).close()
})

const newContext = Effect.acquireRelease(
  Effect.promise(async () => (await browser()).newContext({ viewport: { width: 1280, height: 800 } })),
  (c) => Effect.promise(() => c.close()),
)

/** Screenshot of the whole page, saved, and checked to be a picture (many colours, non-zero variance). */
const snap = async (page: Page, scratch: Page, name: string) => {
  const png = await page.screenshot({ fullPage: true })
  writeFileSync(join(shots, `${name}.png`), png)
  const stats = await pixelStats(scratch, png)
  assert.isAbove(stats.colours, 8, `${name}.png looks blank (${stats.colours} colours)`)
  assert.isAbove(stats.variance, 0, `${name}.png has no contrast`)
}

/** Every form control has an accessible name (a <label>, aria-label or aria-labelledby). */
const unlabelled = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => el.getAttribute("type") !== "hidden")
      .filter((el) =>
        (el as HTMLInputElement).labels?.length === 0 && !el.hasAttribute("aria-label") &&
        !el.hasAttribute("aria-labelledby")
      )
      .map((el) => el.outerHTML)
  )

/** The page is no wider than the viewport (nothing to scroll sideways on a phone). */
const fitsWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1)

const api = (control: ControlHandle, method: string, path: string, body?: unknown, key?: string) =>
  Effect.runPromise(call(control, method, path, { ...(body === undefined ? {} : { body }), ...(key ? { key } : {}) }))

const statusOf = async (control: ControlHandle, id: string) =>
  (await api(control, "GET", `/v1/sessions/${id}`)).body.status

const until = async <A>(what: string, read: () => Promise<A>, ok: (a: A) => boolean) => {
  for (let i = 0; i < 400; i++) {
    const value = await read()
    if (ok(value)) return value
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`never: ${what}`)
}

const scenario = async (control: ControlHandle, node: FakeNode, context: BrowserContext) => {
  const page = await context.newPage()
  const scratch = await context.newPage()
  page.on("dialog", (d) => void d.accept()) // revoke asks to confirm
  const errors: Array<string> = []
  page.on("pageerror", (e) => errors.push(String(e)))

  // Sign in: a wrong key is refused on the form; the admin key becomes an HttpOnly, SameSite=Strict cookie.
  await page.goto(`${control.url}/`)
  await page.getByLabel("API key").fill("paws_not-a-key")
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.getByRole("alert").waitFor()
  await snap(page, scratch, "login")
  await page.getByLabel("API key").fill(control.adminKey)
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.getByRole("heading", { name: "Overview" }).waitFor()
  const cookie = (await context.cookies()).find((c) => c.name === "paws_session")
  assert.isDefined(cookie)
  assert.isTrue(cookie!.httpOnly)
  assert.strictEqual(cookie!.sameSite, "Strict")
  assert.notInclude(await page.content(), control.adminKey)

  // Overview: the node with its capacity, live.
  await page.getByRole("cell", { name: node.info.name }).waitFor()
  await page.getByRole("row", { name: /fake-gone.*lost/ }).waitFor()
  await snap(page, scratch, "overview")

  // A session started by the API: its page streams stdout while it runs, then the console cancels it.
  const secretValue = "sk-console-test-0123456789"
  const started = await api(
    control,
    "POST",
    "/v1/sessions",
    script("chatty hang", {
      network: {
        allowOut: ["api.example.com"],
        credentials: { "api.example.com": { headers: { "x-api-key": secretValue } } },
      },
    }),
  )
  assert.strictEqual(started.status, 202, started.text)
  const id: string = started.body.sessionId
  await page.getByRole("link", { name: "Sessions" }).click()
  await page.getByRole("heading", { name: "Sessions" }).waitFor()
  assert.strictEqual(await page.evaluate(() => document.activeElement?.id), "main") // focus moves to the new page
  // By its link's target: ids made within a minute share their first 8 characters (UUIDv7 time bits).
  await page.locator(`a[href="/sessions/${id}"]`).click()
  const stdout = page.getByTestId("stdout")
  await stdout.filter({ hasText: "tick 2" }).waitFor()
  const seen = Math.max(...[...((await stdout.textContent()) ?? "").matchAll(/tick (\d+)/g)].map((m) => Number(m[1])))
  await stdout.filter({ hasText: `tick ${seen + 3}\n` }).waitFor() // more lines arrive on the open page
  assert.strictEqual(await statusOf(control, id), "running")
  await page.getByTestId("session-status").filter({ hasText: "running" }).waitFor()
  // An exposed port (issue 17) appears on the page with its URL.
  const exposed = await api(control, "POST", `/v1/sessions/${id}/ports`, { port: 8080, access: "token" })
  assert.strictEqual(exposed.status, 201, exposed.text)
  await page.getByRole("region", { name: "Exposed ports" }).getByRole("link", { name: exposed.body.url }).waitFor()
  await snap(page, scratch, "session")
  // The spec shows which headers the proxy injects, never their values.
  assert.include(await page.getByTestId("credential-headers").textContent(), "api.example.com: x-api-key")
  assert.notInclude(await page.content(), secretValue)
  assert.notInclude(await page.content(), exposed.body.token)
  await page.getByRole("button", { name: "Cancel session" }).click()
  await page.getByTestId("session-status").filter({ hasText: "cancelled" }).waitFor()
  assert.strictEqual(await statusOf(control, id), "cancelled")
  assert.include(node.cancelled, id)
  await page.getByRole("list", { name: "State changes" }).filter({ hasText: "cancelled" }).waitFor()

  // A session waiting for a human: approved from the queue, it then runs to completion.
  const gated = (await api(control, "POST", "/v1/sessions", script("echo gated", { requiresApproval: true }))).body
    .sessionId as string
  await page.getByRole("link", { name: "Approvals" }).click()
  await page.getByRole("cell", { name: gated.slice(0, 8), exact: true }).waitFor()
  await snap(page, scratch, "approvals")
  await page.getByRole("button", { name: `Approve session ${gated.slice(0, 8)}` }).click()
  await page.getByText("Nothing waiting for approval.").waitFor()
  await until("approved session completes", () => statusOf(control, gated), (s) => s === "completed")

  // Keys: a new key's secret is shown once and works; revoked from the console, it stops working.
  await page.getByRole("link", { name: "Keys" }).click()
  await page.getByRole("textbox", { name: "Name" }).first().fill("console-test-bot")
  await page.getByRole("button", { name: "Create key" }).click()
  const secret = (await page.getByTestId("new-secret").textContent())!.trim()
  assert.strictEqual((await api(control, "GET", "/v1/sessions", undefined, secret)).status, 200)
  await snap(page, scratch, "keys")
  await page.getByRole("button", { name: "Revoke key console-test-bot" }).click()
  await page.getByRole("row", { name: /console-test-bot/ }).getByText("revoked").waitFor()
  assert.strictEqual((await api(control, "GET", "/v1/sessions", undefined, secret)).status, 401)

  // The other pages render their data.
  await api(control, "POST", "/v1/daemons", { name: "nightly", ...script("echo nightly") })
  await page.getByRole("link", { name: "Daemons" }).click()
  await page.getByRole("link", { name: "nightly" }).click()
  await page.getByRole("heading", { name: "Daemon nightly" }).waitFor()
  // Disable and enable it again; run it now (the console opens the new session's page).
  await page.getByRole("button", { name: "Disable" }).click()
  await page.getByRole("button", { name: "Enable" }).waitFor()
  assert.isFalse((await api(control, "GET", "/v1/daemons/nightly")).body.enabled)
  await page.getByRole("button", { name: "Enable" }).click()
  await page.getByRole("button", { name: "Disable" }).waitFor()
  assert.isTrue((await api(control, "GET", "/v1/daemons/nightly")).body.enabled)
  await page.getByRole("button", { name: "Run now" }).click()
  await page.getByTestId("exit-code").filter({ hasText: "0" }).waitFor()
  const ran = page.url().split("/sessions/")[1]!
  assert.strictEqual((await api(control, "GET", `/v1/sessions/${ran}`)).body.daemon, "nightly")
  await page.goBack()
  await page.getByRole("region", { name: "Last invocations" }).locator(`a[href="/sessions/${ran}"]`).waitFor()
  await snap(page, scratch, "daemon")
  // Snapshots: one built, one still building (its progress shows), one failed with its error.
  await api(control, "POST", "/v1/snapshots", { name: "built" })
  await api(control, "POST", "/v1/snapshots", { name: "slow", setup: "hang" })
  await api(control, "POST", "/v1/snapshots", { name: "bad", setup: "fail" })
  await page.getByRole("link", { name: "Snapshots" }).click()
  await page.getByRole("row", { name: /built.*ready/ }).waitFor()
  await page.getByRole("row", { name: /slow.*building.*booted/ }).getByRole("progressbar").waitFor()
  await page.getByRole("row", { name: /bad.*failed.*setup script exited 1/ }).waitFor()
  await snap(page, scratch, "snapshots")
  await page.getByRole("link", { name: "Audit" }).click()
  await page.getByTestId("chain-status").filter({ hasText: "Hash chain verified" }).waitFor()
  await page.getByRole("textbox", { name: "session" }).fill(gated)
  await page.getByRole("button", { name: "Filter" }).click()
  await page.getByRole("cell", { name: "session.status" }).first().waitFor()
  assert.match(page.url(), new RegExp(`session=${gated}`))
  await snap(page, scratch, "audit")
  await page.getByRole("link", { name: "Charts" }).click()
  await page.getByRole("img", { name: "Session duration" }).locator("canvas").waitFor()
  assert.strictEqual(await page.locator(".chart canvas").count(), 4)
  await snap(page, scratch, "charts")
  assert.deepStrictEqual(await unlabelled(page), [])

  // A client route survives a reload (control answers it with the app); phone width fits without sideways scroll.
  await page.setViewportSize({ width: 390, height: 844 })
  await page.goto(`${control.url}/sessions/${id}`)
  await page.getByTestId("session-status").filter({ hasText: "cancelled" }).waitFor()
  await page.getByTestId("stdout").filter({ hasText: `tick ${seen + 3}\n` }).waitFor()
  assert.isTrue(await fitsWidth(page))
  await page.getByRole("region", { name: "Exposed ports" }).getByText("(ended with the session)").waitFor()
  await snap(page, scratch, "session-phone")
  await page.goto(`${control.url}/`)
  await page.getByRole("cell", { name: node.info.name }).waitFor()
  assert.isTrue(await fitsWidth(page))
  await snap(page, scratch, "overview-phone")
  await page.goto(`${control.url}/audit`)
  await page.getByTestId("chain-status").filter({ hasText: "Hash chain verified" }).waitFor()
  assert.isTrue(await fitsWidth(page)) // wide tables scroll inside their own region

  // Keyboard: the skip link comes first, then the sections.
  await page.keyboard.press("Tab")
  assert.strictEqual(await page.evaluate(() => document.activeElement?.textContent), "Skip to content")

  // Signing out ends the console session: the cookie no longer opens the API, and the app asks for a key again.
  const cookieHeader = { cookie: `paws_session=${cookie!.value}` }
  assert.strictEqual((await fetch(`${control.url}/v1/sessions`, { headers: cookieHeader })).status, 200)
  await page.getByRole("button", { name: "Sign out" }).click()
  await page.getByLabel("API key").waitFor()
  assert.strictEqual((await fetch(`${control.url}/v1/sessions`, { headers: cookieHeader })).status, 401)
  await page.reload()
  await page.getByLabel("API key").waitFor()
  assert.deepStrictEqual(errors, [])
}

describe("web console in Chromium", () => {
  const built = Layer.effectDiscard(Effect.promise(() => ensureConsoleBuilt()))
  layer(Layer.merge(TestControl.layer(), built).pipe(Layer.provide(pgliteBackend)), {
    excludeTestServices: true,
    timeout: 120_000,
  })((it) => {
    it.effect(
      "sign in, watch a session stream live, cancel it, approve one, revoke a key; every page drawn",
      () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const node = yield* registerFakeNode(control.registry, { id: "fake-1", maxConcurrent: 4 })
          // A second node that connected and went away: the overview lists it as lost.
          const gone = yield* Scope.make()
          yield* registerFakeNode(control.registry, { id: "fake-gone", maxConcurrent: 2 }).pipe(Scope.provide(gone))
          yield* Scope.close(gone, Exit.void)
          const context = yield* newContext
          yield* Effect.promise(() => scenario(control, node, context))
        }).pipe(Effect.scoped),
      { timeout: 120_000 },
    )
  })
})

/** The login page's single sign-on button, through a real OpenID provider's forms, back to the page asked for. */
const ssoScenario = async (control: ControlHandle, context: BrowserContext) => {
  const page = await context.newPage()
  const scratch = await context.newPage()
  await page.goto(`${control.url}/sessions?status=running`)
  const button = page.getByRole("link", { name: "Sign in with your identity provider" })
  await button.waitFor()
  await snap(page, scratch, "login-sso")
  await button.click()
  await page.locator('input[name="login"]').fill("alice") // oidc-provider's development login form
  await page.locator('input[name="password"]').fill("any password")
  await page.locator('button[type="submit"]').click()
  await page.locator('button[type="submit"]').click() // its consent form
  await page.getByRole("heading", { name: "Sessions" }).waitFor()
  assert.strictEqual(new URL(page.url()).pathname + new URL(page.url()).search, "/sessions?status=running")
  assert.strictEqual(await page.locator(".who").textContent(), "alice@example.test")
  const cookie = (await context.cookies()).find((c) => c.name === "paws_session")
  assert.isTrue(cookie?.httpOnly)
}

describe("web console single sign-on in Chromium", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect(
      "the login page offers the identity provider when configured, and comes back signed in",
      () =>
        Effect.gen(function* () {
          yield* Effect.promise(() => ensureConsoleBuilt())
          const provider = yield* startTestProvider({ alice: { email: "alice@example.test", groups: ["paws-admins"] } })
          const control = yield* startControl(yield* (yield* TestDatabase).fresh, {
            PAWS_OIDC_ISSUER: provider.issuer,
            PAWS_OIDC_CLIENT_ID: provider.clientId,
            PAWS_OIDC_CLIENT_SECRET: provider.clientSecret,
            PAWS_OIDC_SCOPE_MAP: "groups:paws-admins=admin",
            PAWS_OIDC_REQUEST_SCOPES: "openid email groups",
            PAWS_TEST_OIDC_ALLOW_HTTP: "true",
          })
          provider.register([`${control.url}/v1/auth/oidc/callback`])
          const context = yield* newContext
          yield* Effect.promise(() => ssoScenario(control, context))
        }).pipe(Effect.scoped),
      { timeout: 120_000 },
    )
  })
})
