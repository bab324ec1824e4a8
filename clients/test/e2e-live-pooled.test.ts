// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Browser } from "playwright-core"
import { ensureConsoleBuilt } from "../console/scripts/ensure-built.ts"
import { launchChromium } from "./support/Browser.ts"
import { binPath, paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only: real `paws control` and `paws node` processes; the node keeps the default snapshot
// and a warm pool of its clones, so the one interactive session runs on a restored VM whose only
// channel is the guest agent (paws-agent.c + paws-pty.c), never SSH. That one VM serves both
// tests: `paws shell` in tmux, then a guest web server reached through every exposure mode from
// real Chromium and curl. (clients/test/e2e-live.test.ts covers a cold-booted VM over SSH.)

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let control: PawsProcess
let node: PawsProcess
let url = ""
let cli: Record<string, string | undefined> = {}
let id = ""
/** One Chromium for the file's browser tests (each takes a fresh context: its own cookies). */
let launched: Promise<Browser> | undefined
const browser = () => (launched ??= launchChromium())

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${cli.PAWS_API_KEY}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, json: text === "" ? undefined : JSON.parse(text) as any, text }
}

/** Is a `name` process running in the guest? (the minimal image's busybox has no pgrep) */
const running = (name: string) =>
  `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = ${name} ] && exit 0; done; exit 1`
const sleeping = running("sleep")

beforeAll(async () => {
  world = await makeE2eWorld()
  const port = await freePort()
  url = `http://127.0.0.1:${port}`
  control = startPaws(["control"], {
    PAWS_HOST: "127.0.0.1",
    PAWS_PORT: String(port),
    PAWS_DATA_DIR: join(world.dir, "control"),
    PAWS_DISPATCH_INTERVAL_MS: "200",
  })
  await control.waitFor(/paws control is serving/, 120_000)
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
  const token = await paws(["nodes", "token", "create", "--name", "e2e-pooled"], cli)
  expect(token.code, token.stderr).toBe(0)
  node = startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: token.stdout.trim(),
    PAWS_NODE_ID: "e2e-pooled",
    PAWS_NODE_MAX_VMS: "2",
    PAWS_NODE_DEFAULT_SNAPSHOT: "true",
    PAWS_NODE_VM_POOL: "1",
  })
  // the kept snapshot is built at start (the node's listing names images as ready already)
  await node.waitFor(/snapshot default (built in \d+ ms|not built: .*)/, 400_000)
  expect(node.log()).toMatch(/snapshot default built in/)
  const created = await api("POST", "/v1/sessions", { workload: { type: "interactive" }, timeoutMs: 900_000 })
  expect(created.status, created.text).toBe(202)
  id = created.json.sessionId
  const up = await waitUntil("running", () => api("GET", `/v1/sessions/${id}`), (r) =>
    r.json?.status !== "pending" &&
    r.json?.status !== "starting", 180_000)
  expect(up.json.status, node.log().slice(-3000)).toBe("running")
  // a restored VM: the agent runs in it (a cold-booted one has only dropbear)
  const agent = await paws(["exec", id, "--", "sh", "-c", running("paws-agent")], cli)
  expect(agent.code, node.log().slice(-3000)).toBe(0)
}, 600_000)

afterAll(async () => {
  if (launched !== undefined) await (await launched).close()
  await node?.kill("SIGTERM")
  await control?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("live sessions on a warm-pool VM: the guest agent's channel (real control, node, VM; real CLI)", () => {
  it(
    "paws shell in tmux over the agent: two shells at once on their own PTYs, the size follows the pane, " +
      "Ctrl-C interrupts the foreground job, exit ends the CLI with the shell's status",
    async () => {
      const server = `paws-pooled-${process.pid}`
      const tmux = (...args: Array<string>) => execFileSync("tmux", ["-L", server, ...args], { encoding: "utf8" })
      const screen = (pane: string) => tmux("capture-pane", "-p", "-t", pane)
      const waitScreen = (pane: string, what: string, ok: (t: string) => boolean) =>
        waitUntil(what, () => Promise.resolve(screen(pane)), ok, 60_000)
      const paneSize = (pane: string) =>
        tmux("display-message", "-p", "-t", pane, "#{pane_height} #{pane_width}").trim()
      const exports = Object.entries(cli).map(([k, v]) => `${k}='${v}'`).join(" ")
      const shellCommand = `env ${exports} ${process.execPath} ${binPath} shell ${id}; echo SHELL-EXITED=$?; sleep 60`
      tmux("new-session", "-d", "-s", "one", "-x", "100", "-y", "30", shellCommand)
      tmux("new-session", "-d", "-s", "two", "-x", "80", "-y", "20", shellCommand)
      try {
        // a login shell on a PTY whose parent is the agent (no SSH in this VM)
        tmux("send-keys", "-t", "one", "echo hi-$((40+2)) parent=$(cat /proc/$PPID/comm); tty", "Enter")
        const first = await waitScreen("one", "a PTY", (t) => t.includes("hi-42 parent=paws-agent"))
        const pts = /\/dev\/pts\/\d+/.exec(first)?.[0]
        expect(pts).toBeDefined()
        tmux("send-keys", "-t", "two", "clear; echo two-$((1+1)); tty", "Enter")
        const second = await waitScreen("two", "a second PTY", (t) => /two-2\n\/dev\/pts\/\d+/.test(t))
        expect(/\/dev\/pts\/\d+/.exec(second)?.[0]).not.toBe(pts)

        // the guest's terminal size follows the pane
        tmux("send-keys", "-t", "one", "clear; stty size", "Enter")
        const before = paneSize("one")
        await waitScreen("one", "size", (t) => t.includes(before))
        tmux("resize-window", "-t", "one", "-x", "90", "-y", "25")
        const after = paneSize("one")
        expect(after).not.toBe(before)
        tmux("send-keys", "-t", "one", "clear; stty size", "Enter")
        await waitScreen("one", "resized", (t) => t.includes(after))

        // Ctrl-C reaches the foreground job; an exec runs meanwhile beside the open shells
        tmux("send-keys", "-t", "one", "sleep 300", "Enter")
        await waitUntil("sleep running", () => paws(["exec", id, "--", "sh", "-c", sleeping], cli), (r) => r.code === 0)
        tmux("send-keys", "-t", "one", "C-c")
        tmux("send-keys", "-t", "one", "echo after-$((1+1))", "Enter")
        await waitScreen("one", "interrupted", (t) => t.includes("after-2"))
        expect((await paws(["exec", id, "--", "sh", "-c", sleeping], cli)).code).toBe(1)

        // exit: each CLI ends with its shell's status
        tmux("send-keys", "-t", "one", "exit 3", "Enter")
        await waitScreen("one", "exit 3", (t) => t.includes("SHELL-EXITED=3"))
        tmux("send-keys", "-t", "two", "echo still-here; exit", "Enter")
        await waitScreen("two", "exit 0", (t) => t.includes("still-here") && t.includes("SHELL-EXITED=0"))
      } finally {
        try {
          tmux("kill-server")
        } catch {
          // already gone
        }
      }
    },
    300_000,
  )

  // The access modes, each from a real browser and curl. `sso` (the console's OIDC login, built
  // by the auth work) belongs in this list too: expose with `--access sso`, then a signed-in
  // browser reaches the page and one without the needed scope is refused.
  it(
    "an exposed guest web server from Chromium and curl: token (?token= once, then a cookie), pin (a form; " +
      "wrong PINs lock it), public, a WebSocket echo through the exposure; cancel removes them (404)",
    async () => {
      writeFileSync(join(world.dir, "index.html"), "<title>guest</title><p id=hello>hello from the guest</p>\n")
      expect((await paws(["cp", join(world.dir, "index.html"), `${id}:/tmp/www/index.html`], cli)).code).toBe(0)
      const wsecho = join(world.dir, "wsecho")
      const source = fileURLToPath(new URL("./support/wsecho.c", import.meta.url))
      execFileSync("gcc", ["-static", "-O2", "-o", wsecho, source])
      expect((await paws(["cp", wsecho, `${id}:/tmp/wsecho`], cli)).code).toBe(0)
      const servers = await paws([
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "httpd -p 8080 -h /tmp/www && chmod 755 /tmp/wsecho && { /tmp/wsecho 8081 >/dev/null 2>&1 & }",
      ], cli)
      expect(servers.code, servers.stderr).toBe(0)

      const expose = async (port: number, access: string) => {
        const r = await paws(["ports", "expose", id, String(port), "--access", access], cli)
        expect(r.code, r.stderr).toBe(0)
        return {
          url: /^(http:\/\/\S+\/p\/[A-Za-z0-9_-]{24}\/)$/m.exec(r.stdout)![1]!,
          token: /^token: (\S+)/m.exec(r.stdout)?.[1],
          pin: /^pin: ([0-9]+)/m.exec(r.stdout)?.[1],
        }
      }
      /** curl's status code (and headers with -i) for a URL: a second client beside the browser. */
      const curl = (...args: Array<string>) =>
        execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args], { encoding: "utf8" })
      const curlHeaders = (u: string) =>
        execFileSync("curl", ["-s", "-D", "-", "-o", "/dev/null", u], { encoding: "utf8" })

      const context = await (await browser()).newContext() // a fresh profile of its own
      const page = await context.newPage()
      try {
        const hello = () => page.locator("#hello").textContent({ timeout: 30_000 })

        // token: refused without it; ?token= once answers with a cookie and the path without the token
        const tok = await expose(8080, "token")
        expect(curl(tok.url)).toBe("401")
        expect(curl("-H", `authorization: Bearer ${tok.token}`, tok.url)).toBe("200")
        const once = curlHeaders(`${tok.url}?token=${tok.token}`)
        expect(once).toMatch(/^HTTP\/1\.1 303/)
        expect(once).toMatch(/^set-cookie: paws_port_\w+=[^;]+; Path=\/p\/[A-Za-z0-9_-]{24}\/; HttpOnly/im)
        expect((await page.goto(tok.url))!.status()).toBe(401)
        const viaToken = await page.goto(`${tok.url}?token=${tok.token}`)
        expect(viaToken!.status()).toBe(200)
        expect(page.url()).toBe(tok.url)
        expect(await hello()).toBe("hello from the guest")
        const granted = (await context.cookies()).find((c) => c.name.startsWith("paws_port_"))
        expect(granted).toMatchObject({ httpOnly: true, path: new URL(tok.url).pathname.replace(/\/$/, "") + "/" })
        expect((await page.goto(`${tok.url}index.html`))!.status()).toBe(200) // the cookie, no token
        expect(await hello()).toBe("hello from the guest")

        // pin: the form until the right PIN; five wrong ones lock it, then even the right one is refused
        const pinned = await expose(8080, "pin")
        const wrong = pinned.pin === "00000000" ? "11111111" : "00000000"
        expect((await page.goto(pinned.url))!.status()).toBe(401)
        const submit = async (pin: string) => {
          await page.locator("input[name=pin]").fill(pin)
          const [response] = await Promise.all([page.waitForNavigation(), page.locator("button").click()])
          return response!.status()
        }
        for (let i = 1; i < 5; i++) expect(await submit(wrong), `wrong PIN ${i}`).toBe(401)
        expect(await submit(wrong)).toBe(429)
        expect(await page.locator("body").textContent()).toMatch(/too many wrong PINs/)
        expect(curl("-d", `pin=${pinned.pin}`, pinned.url)).toBe("429")
        const pinned2 = await expose(8080, "pin")
        expect((await page.goto(pinned2.url))!.status()).toBe(401)
        expect(await submit(pinned2.pin!)).toBe(200)
        expect(page.url()).toBe(pinned2.url)
        expect(await hello()).toBe("hello from the guest")
        expect(curl(pinned2.url)).toBe("401") // curl has no cookie

        // public: anyone, browser and curl alike
        const pub = await expose(8080, "public")
        expect((await page.goto(pub.url))!.status()).toBe(200)
        expect(await hello()).toBe("hello from the guest")
        expect(curl(pub.url)).toBe("200")

        // a WebSocket through a token exposure: the browser's own handshake carries the grant cookie;
        // text and binary messages come back
        const ws = await expose(8081, "token")
        expect(curl(ws.url)).toBe("401")
        // (a page of control's origin fetches ?token= once; the browser keeps the 303's cookie)
        expect((await page.goto(pub.url))!.status()).toBe(200)
        const grant = await page.evaluate(
          (u) => fetch(u, { redirect: "manual", credentials: "include" }).then((r) => r.type),
          `${ws.url}?token=${ws.token}`,
        )
        expect(grant).toBe("opaqueredirect")
        expect((await context.cookies()).filter((c) => c.name.startsWith("paws_port_")).map((c) => c.path))
          .toContain(new URL(ws.url).pathname)
        const echoed = await page.evaluate(async (wsUrl) => {
          const socket = new WebSocket(wsUrl)
          socket.binaryType = "arraybuffer"
          const got: Array<string> = []
          return await new Promise<Array<string>>((resolve, reject) => {
            socket.onopen = () => {
              socket.send("hello through the exposure")
              socket.send(new Uint8Array([0, 1, 2, 255]))
            }
            socket.onmessage = (m) => {
              got.push(
                typeof m.data === "string"
                  ? `text:${m.data}`
                  : `binary:${Array.from(new Uint8Array(m.data)).map((b) => b.toString(16).padStart(2, "0")).join("")}`,
              )
              if (got.length === 2) socket.close()
            }
            socket.onclose = () => resolve(got)
            socket.onerror = () => reject(new Error("websocket error"))
          })
        }, ws.url.replace(/^http/, "ws") + "chat")
        expect(echoed).toEqual(["text:hello through the exposure", "binary:000102ff"])

        // cancel: every exposure ends with the session
        expect((await paws(["sessions", "cancel", id], cli)).code).toBe(0)
        await waitUntil("cancelled", () => api("GET", `/v1/sessions/${id}`), (r) => r.json?.status === "cancelled")
        // The guest's httpd sends Last-Modified without Cache-Control, so Chromium may keep its pages
        // fresh for a moment (heuristic caching); what is checked here is control's answer.
        const cdp = await context.newCDPSession(page)
        await cdp.send("Network.enable")
        await cdp.send("Network.setCacheDisabled", { cacheDisabled: true })
        expect((await page.goto(pub.url))!.status()).toBe(404)
        expect((await page.goto(`${tok.url}index.html`))!.status()).toBe(404)
        expect(curl(pub.url)).toBe("404")
        expect(curl("-H", `authorization: Bearer ${tok.token}`, tok.url)).toBe("404")
      } finally {
        await context.close()
      }
      // the session ran on a restored VM (a warm clone when the pool had one ready): its timings say so
      expect(node.log()).toMatch(new RegExp(`session ${id} cancelled: .*vm\\(restored\\)`))
    },
    300_000,
  )

  // The console against real sessions on this node's VMs (the FakeNode version is console.test.ts): output
  // streams into the page while the guest prints it; cancel from the page stops the VM; a shell open on
  // that session then ends non-zero (it closed without an exit status).
  it(
    "the console signed in with a key: a VM session's stdout arrives live, then its result; the node filter " +
      "lists it; cancel from the console stops a running VM session, frees its slot and ends an open paws shell",
    async () => {
      await ensureConsoleBuilt()
      const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 } })
      const page = await context.newPage()
      try {
        await page.goto(`${url}/`)
        await page.getByLabel("API key").fill(cli.PAWS_API_KEY!)
        await page.getByRole("button", { name: "Sign in" }).click()
        await page.getByRole("heading", { name: "Overview" }).waitFor()

        // A line every ~200 ms (busybox sleep without fractions: a line a second); after the third it waits
        // (up to ~30 s) for /work/paws-go, which the test writes once it has seen the early lines on the page, so
        // "while the guest is still printing" holds however slowly the page loads on a busy machine.
        const lines = 25
        const pace = "sleep 0.2 2>/dev/null || sleep 1"
        const chatty = await api("POST", "/v1/sessions", {
          workload: {
            type: "script",
            script: `i=1; while [ $i -le ${lines} ]; do echo live-line-$i; i=$((i+1)); ` +
              `if [ $i -eq 4 ]; then n=0; while [ ! -e /work/paws-go ] && [ $n -lt 150 ]; do ${pace}; n=$((n+1)); done; ` +
              `if [ -e /work/paws-go ]; then echo go-seen; else echo go-never-seen; fi; fi; ` +
              `${pace}; done; echo live-done`,
          },
        })
        expect(chatty.status, chatty.text).toBe(202)
        const chattyId: string = chatty.json.sessionId
        await page.goto(`${url}/sessions/${chattyId}`)
        const stdout = page.getByTestId("stdout")
        await stdout.filter({ hasText: "live-line-3\n" }).waitFor({ timeout: 120_000 })
        // early lines are on the page while the guest is still printing
        const early = (await stdout.textContent()) ?? ""
        expect(early).not.toContain("live-done")
        expect(early).not.toContain(`live-line-${lines}\n`)
        expect((await api("GET", `/v1/sessions/${chattyId}`)).json.status).toBe("running")
        // The script holds the agent's channel while it runs: exec and files go over the guest's SSH meanwhile.
        const during = await paws(["exec", chattyId, "--", "sh", "-c", "echo exec-during-script; ls /workload"], cli)
        expect(during.code, during.stderr).toBe(0)
        expect(during.stdout).toBe("exec-during-script\nscript.sh\n")
        const go = await fetch(`${url}/v1/sessions/${chattyId}/files?path=/work/paws-go`, {
          method: "PUT",
          headers: { authorization: `Bearer ${cli.PAWS_API_KEY}`, "content-type": "application/octet-stream" },
          body: "go",
        })
        expect(go.ok, await go.text()).toBe(true)
        // then the rest, and the result
        await page.getByTestId("session-status").filter({ hasText: "completed" }).waitFor({ timeout: 60_000 })
        await page.getByTestId("exit-code").filter({ hasText: "0" }).waitFor()
        const all = (await stdout.textContent()) ?? ""
        expect(all.match(/live-line-\d+/g)).toEqual(Array.from({ length: lines }, (_, i) => `live-line-${i + 1}`))
        expect(all).toContain("live-done")
        // The file written into the running script's guest was what released it (not the wait's cap).
        expect(all).toContain("go-seen")

        // the Sessions page's node filter goes to the server: this node lists it, another node none
        await page.goto(`${url}/sessions?node=e2e-pooled`)
        // By its link's target: ids made within a minute share their first 8 characters (UUIDv7 time bits).
        await page.locator(`a[href="/sessions/${chattyId}"]`).waitFor()
        await page.goto(`${url}/sessions?node=elsewhere`)
        await page.getByText("No sessions match.").waitFor()

        // A session that would run for ever: a shell is opened on it, then the console cancels it.
        const forever = await api("POST", "/v1/sessions", {
          workload: { type: "script", script: "while :; do echo tick; sleep 1; done" },
          timeoutMs: 600_000,
        })
        expect(forever.status, forever.text).toBe(202)
        const foreverId: string = forever.json.sessionId
        await page.goto(`${url}/sessions/${foreverId}`)
        await stdout.filter({ hasText: "tick" }).waitFor({ timeout: 120_000 })
        const shell = spawn(process.execPath, [binPath, "shell", foreverId], { env: { ...process.env, ...cli } })
        let shellOut = ""
        let shellErr = ""
        shell.stdout.on("data", (d) => (shellOut += d))
        shell.stderr.on("data", (d) => (shellErr += d))
        const shellCode = new Promise<number | null>((resolve) => shell.on("close", resolve))
        shell.stdin.write("echo shell-$((6*7))\n")
        await waitUntil("the shell answers", () => Promise.resolve(shellOut), (o) => o.includes("shell-42"))
        // The listing shows what the node last reported (its status comes at intervals), so wait for it.
        await waitUntil(
          "the node counts it running",
          () => api("GET", "/v1/nodes"),
          (r) => (r.json.find((n: any) => n.id === "e2e-pooled")?.capacity.running ?? 0) >= 1,
        )

        await page.getByRole("button", { name: "Cancel session" }).click()
        await page.getByTestId("session-status").filter({ hasText: "cancelled" }).waitFor({ timeout: 60_000 })
        expect((await api("GET", `/v1/sessions/${foreverId}`)).json.status).toBe("cancelled")
        expect(await shellCode, shellErr).toBe(1)
        expect(shellErr).toContain("without an exit status")
        // its VM is gone and the slot free: the node runs nothing and has both slots available
        await waitUntil("slot freed", () => api("GET", "/v1/nodes"), (r) => {
          const c = r.json.find((n: any) => n.id === "e2e-pooled")?.capacity
          return c?.running === 0 && c?.available === 2
        })
        await waitUntil(
          "node stopped it",
          () => Promise.resolve(node.log()),
          (l) => l.includes(`session ${foreverId} cancelled`),
        )
      } finally {
        await context.close()
      }
    },
    300_000,
  )
})
