// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { leftovers } from "../../node/test/support/TestNode.ts"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { request as httpRequest } from "node:http"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import WebSocket from "ws"
import { binPath, paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only: real `paws control` and `paws node` processes, one real VM (an interactive session)
// serving every check of exec and files, then a second (a keepAlive script).

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let control: PawsProcess
let node: PawsProcess
let url = ""
let cli: Record<string, string | undefined> = {}

const api = async (method: string, path: string, init: { body?: unknown; raw?: Uint8Array; key?: string } = {}) => {
  const headers: Record<string, string> = { authorization: `Bearer ${init.key ?? cli.PAWS_API_KEY}` }
  let body: BodyInit | undefined
  if (init.raw !== undefined) {
    headers["content-type"] = "application/octet-stream"
    body = init.raw as unknown as BodyInit
  } else if (init.body !== undefined) {
    headers["content-type"] = "application/json"
    body = JSON.stringify(init.body)
  }
  const res = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body }) })
  const bytes = new Uint8Array(await res.arrayBuffer())
  const text = Buffer.from(bytes).toString("utf8")
  let json: any
  try {
    json = text === "" ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, json, text, bytes }
}

/** The SSE frames of an exec response, as {event, data}. */
const execFrames = (text: string) =>
  text.split("\n\n").filter((f) => f.trim() !== "").map((f) => {
    const event = /^event: (.*)$/m.exec(f)?.[1]
    const data = JSON.parse(/^data: (.*)$/m.exec(f)?.[1] ?? "null")
    return { event, data }
  })

const decoded = (frames: ReturnType<typeof execFrames>, stream: "stdout" | "stderr") =>
  frames.filter((f) => f.event === stream).map((f) => Buffer.from(f.data.data, "base64").toString("utf8")).join("")

const waitStatus = (id: string, ok: (s: string) => boolean, ms = 120_000) =>
  waitUntil(`session ${id} status`, () => api("GET", `/v1/sessions/${id}`), (r) => ok(r.json?.status), ms)

beforeAll(async () => {
  world = await makeE2eWorld()
  const port = await freePort()
  url = `http://127.0.0.1:${port}`
  control = startPaws(["control"], {
    PAWS_HOST: "127.0.0.1",
    PAWS_PORT: String(port),
    PAWS_DATA_DIR: join(world.dir, "control"),
    PAWS_DISPATCH_INTERVAL_MS: "200",
    PAWS_PUBLIC_DOMAIN: "paws.test",
  })
  await control.waitFor(/paws control is serving/, 120_000)
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
  const created = await paws(["nodes", "token", "create", "--name", "e2e-live"], cli)
  expect(created.code, created.stderr).toBe(0)
  node = startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: created.stdout.trim(),
    PAWS_NODE_ID: "e2e-live",
    PAWS_NODE_MAX_VMS: "2",
  })
  await waitUntil("registered", () => api("GET", "/v1/nodes"), (r) => r.json.some((n: any) => n.id === "e2e-live"))
}, 180_000)

afterAll(async () => {
  await node?.kill("SIGTERM")
  await control?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("live sessions end to end (real control, node, VM; real CLI)", () => {
  it(
    "an interactive session stays up: exec streams output and exit codes with stdin, files go in and out " +
      "byte-exact under the allowed roots only, a read-only key is refused; a guest web server is reached through " +
      "token, pin (locked out after 5 wrong) and public exposures, SSE and WebSocket; paws shell in tmux (PTY, " +
      "resize, Ctrl-C); after cancel exec is a 409 and the exposures 404",
    async () => {
      const created = await api("POST", "/v1/sessions", {
        body: { workload: { type: "interactive", env: { GREETING: "hello-live" } }, timeoutMs: 600_000 },
      })
      expect(created.status, created.text).toBe(202)
      const id = created.json.sessionId as string
      await waitStatus(id, (s) => s === "running" || s === "failed")
      expect((await api("GET", `/v1/sessions/${id}`)).json.status).toBe("running")

      // exec over HTTP: stdout, stderr, the session's env, stdin, the exit code
      const ran = await api("POST", `/v1/sessions/${id}/exec`, {
        body: { command: ["sh", "-c", "echo $GREETING; cat; echo oops >&2; exit 3"], stdin: "from-stdin\n" },
      })
      expect(ran.status, ran.text).toBe(200)
      const frames = execFrames(ran.text)
      expect(decoded(frames, "stdout")).toBe("hello-live\nfrom-stdin\n")
      expect(decoded(frames, "stderr")).toBe("oops\n")
      expect(frames.at(-1)).toEqual({ event: "exit", data: { exitCode: 3 } })

      // still up after the exec: the CLI, its exit code and streams
      const viaCli = await paws(["exec", id, "--", "sh", "-c", "uname -s; echo e >&2; exit 7"], cli)
      expect(viaCli.stdout).toBe("Linux\n")
      expect(viaCli.stderr).toBe("e\n")
      expect(viaCli.code).toBe(7)
      const withStdin = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [binPath, "exec", "-i", id, "--", "wc", "-c"], {
          env: { ...process.env, ...cli },
        })
        let out = ""
        child.stdout.on("data", (d: Buffer) => (out += d))
        child.on("close", (code: number | null) => resolve({ code, out }))
        child.stdin.end("12345")
      })
      expect(withStdin).toEqual({ code: 0, out: "5\n" })

      // files: every byte value round-trips through paws cp, and the guest sees the same bytes
      const bytes = new Uint8Array(4096).map((_, i) => i % 256)
      const local = join(world.dir, "in.bin")
      writeFileSync(local, bytes)
      const put = await paws(["cp", local, `${id}:/work/sub/dir/data.bin`], cli)
      expect(put.code, put.stderr).toBe(0)
      const sum = await paws([
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "wc -c < /work/sub/dir/data.bin; md5sum < /work/sub/dir/data.bin",
      ], cli)
      const md5 = createHash("md5").update(bytes).digest("hex")
      expect(sum.stdout).toBe(`4096\n${md5}  -\n`)
      const back = join(world.dir, "out.bin")
      const got = await paws(["cp", `${id}:/work/sub/dir/data.bin`, back], cli)
      expect(got.code, got.stderr).toBe(0)
      expect(new Uint8Array(readFileSync(back))).toEqual(bytes)

      // the API directly: write, read, missing file, paths outside the roots, a symlink out
      const written = await api("PUT", `/v1/sessions/${id}/files?path=/tmp/x.txt`, { raw: Buffer.from("x\n") })
      expect(written.status, written.text).toBe(204)
      expect((await api("GET", `/v1/sessions/${id}/files?path=/tmp//x.txt`)).text).toBe("x\n")
      const missing = await api("GET", `/v1/sessions/${id}/files?path=/work/nope`)
      expect([missing.status, missing.json._tag]).toEqual([404, "GuestFileNotFound"])
      for (const bad of ["/etc/passwd", "/work/../etc/passwd", "work/x", "/work"]) {
        const r = await api("GET", `/v1/sessions/${id}/files?path=${encodeURIComponent(bad)}`)
        expect(r.status, bad).toBe(400)
        expect(r.json.issues[0].path, bad).toBe("query.path")
      }
      const writeOut = await api("PUT", `/v1/sessions/${id}/files?path=/root/x`, { raw: Buffer.from("no") })
      expect([writeOut.status, writeOut.json.issues[0].path]).toEqual([400, "query.path"])
      await paws(["exec", id, "--", "ln", "-s", "/etc", "/work/etc-link"], cli)
      const viaLink = await api("GET", `/v1/sessions/${id}/files?path=/work/etc-link/passwd`)
      expect([viaLink.status, viaLink.json.issues[0].path]).toEqual([400, "query.path"])
      expect(viaLink.json.message).toMatch(/symlink/)
      const writeViaLink = await api("PUT", `/v1/sessions/${id}/files?path=/work/etc-link/evil`, {
        raw: Buffer.from("x"),
      })
      expect(writeViaLink.status).toBe(400)
      const etc = await paws(["exec", id, "--", "sh", "-c", "test -e /etc/evil && echo present || echo absent"], cli)
      expect(etc.stdout).toBe("absent\n")

      // scopes: a read-only key may look, not exec or read files
      const key = await api("POST", "/v1/keys", { body: { name: "reader", scopes: ["read"] } })
      expect(key.status, key.text).toBe(201)
      const reader = key.json.secret as string
      expect((await api("POST", `/v1/sessions/${id}/exec`, { body: { command: ["true"] }, key: reader })).status)
        .toBe(403)
      expect((await api("GET", `/v1/sessions/${id}/files?path=/tmp/x.txt`, { key: reader })).status).toBe(403)
      const badBody = await api("POST", `/v1/sessions/${id}/exec`, { body: { command: [] } })
      expect([badBody.status, badBody.json.issues[0].path]).toEqual([400, "command"])

      // exposed ports: busybox httpd in the guest, a page and a CGI that streams SSE
      writeFileSync(join(world.dir, "index.html"), "hello from the guest\n")
      expect((await paws(["cp", join(world.dir, "index.html"), `${id}:/tmp/www/index.html`], cli)).code).toBe(0)
      const cgi = [
        "#!/bin/sh",
        "printf 'Content-Type: text/event-stream\\r\\n\\r\\n'",
        "printf 'data: one\\n\\n'",
        "while [ ! -e /tmp/go ]; do sleep 1; done",
        "printf 'data: two\\n\\n'",
      ].join("\n") + "\n"
      writeFileSync(join(world.dir, "events"), cgi)
      writeFileSync(
        join(world.dir, "cookies"),
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$HTTP_COOKIE\"\n",
      )
      expect((await paws(["cp", join(world.dir, "cookies"), `${id}:/tmp/www/cgi-bin/cookies`], cli)).code).toBe(0)
      expect((await paws(["cp", join(world.dir, "events"), `${id}:/tmp/www/cgi-bin/events`], cli)).code).toBe(0)
      const httpd = await paws([
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "chmod 755 /tmp/www/cgi-bin/* && httpd -p 8080 -h /tmp/www",
      ], cli)
      expect(httpd.code, httpd.stderr).toBe(0)

      const expose = async (access: string) => {
        const r = await paws(["ports", "expose", id, "8080", "--access", access], cli)
        expect(r.code, r.stderr).toBe(0)
        return {
          url: /^(http:\/\/\S+\/p\/[A-Za-z0-9_-]{24}\/)$/m.exec(r.stdout)![1]!,
          token: /^token: (\S+)/m.exec(r.stdout)?.[1],
          pin: /^pin: ([0-9]{8})/m.exec(r.stdout)?.[1],
          host: /^host: https:\/\/(8080-[a-z0-9]{24}\.paws\.test)\/$/m.exec(r.stdout)![1]!,
        }
      }
      /** A request to control with another Host header (what a wildcard DNS name would send). */
      const viaHost = (host: string, path: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; body: string; location: string | undefined }>((resolve, reject) => {
          const req = httpRequest(`${url}${path}`, { headers: { ...headers, host } }, (res) => {
            let body = ""
            res.on("data", (d) => (body += d))
            res.on("end", () => resolve({ status: res.statusCode!, body, location: res.headers.location }))
          })
          req.on("error", reject)
          req.end()
        })
      const get = (u: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
        fetch(u, { redirect: "manual", headers, ...init })

      // token: refused without it, relayed with it as a bearer; ?token= once sets a cookie
      const tok = await expose("token")
      expect((await get(tok.url)).status).toBe(401)
      expect((await get(tok.url, { authorization: "Bearer wrong" })).status).toBe(401)
      const withBearer = await get(tok.url, { authorization: `Bearer ${tok.token}` })
      expect([withBearer.status, await withBearer.text()]).toEqual([200, "hello from the guest\n"])
      const once = await get(`${tok.url}index.html?token=${tok.token}`)
      expect(once.status).toBe(303)
      expect(once.headers.get("location")).toMatch(/\/index\.html$/)
      const cookie = once.headers.get("set-cookie")!.split(";")[0]!
      const viaCookie = await get(tok.url + "index.html", { cookie })
      expect([viaCookie.status, await viaCookie.text()]).toEqual([200, "hello from the guest\n"])

      // the app's own cookies reach the guest; the grant cookie does not
      const seenCookies = await get(`${tok.url}cgi-bin/cookies`, { cookie: `app=1; ${cookie}; theme=dark` })
      expect(await seenCookies.text()).toBe("app=1; theme=dark\n")

      // SSE streams through: the first event arrives while the CGI still waits for /tmp/go
      const sse = await get(`${tok.url}cgi-bin/events`, { cookie })
      expect(sse.status).toBe(200)
      expect(sse.headers.get("content-type")).toMatch(/text\/event-stream/)
      const stream = sse.body!.getReader()
      let seen = ""
      while (!seen.includes("data: one")) seen += Buffer.from((await stream.read()).value!).toString()
      expect(seen).not.toContain("data: two")
      await paws(["exec", id, "--", "touch", "/tmp/go"], cli)
      for (let r = await stream.read(); !r.done; r = await stream.read()) seen += Buffer.from(r.value).toString()
      expect(seen).toContain("data: two")

      // pin: a form until the right PIN; wrong PINs lock it, after which even the right one is refused
      const pinned = await expose("pin")
      const form = await get(pinned.url)
      expect([form.status, await form.text()]).toEqual([401, expect.stringContaining("<form")])
      const post = (pin: string) =>
        get(pinned.url, { "content-type": "application/x-www-form-urlencoded" }, { method: "POST", body: `pin=${pin}` })
      const wrong = pinned.pin === "00000000" ? "11111111" : "00000000"
      for (let i = 1; i < 5; i++) expect((await post(wrong)).status, `attempt ${i}`).toBe(401)
      expect((await post(wrong)).status).toBe(429)
      expect((await post(pinned.pin!)).status).toBe(429)
      const pinned2 = await expose("pin")
      const ok = await get(pinned2.url, { "content-type": "application/x-www-form-urlencoded" }, {
        method: "POST",
        body: `pin=${pinned2.pin}`,
      })
      expect(ok.status).toBe(303)
      const pinCookie = ok.headers.get("set-cookie")!.split(";")[0]!
      expect(await (await get(pinned2.url, { cookie: pinCookie })).text()).toBe("hello from the guest\n")
      // a cookie of one exposure opens no other
      expect(
        (await get(pinned.url, { cookie: pinCookie.replace(/^[^=]+/, `paws_port_${pinned.url.split("/")[4]}`) }))
          .status,
      )
        .toBe(401)

      // the host form: {port}-{id}.PAWS_PUBLIC_DOMAIN is the exposure's own origin, same access rules
      expect((await viaHost(tok.host, "/")).status).toBe(401)
      expect(await viaHost(tok.host, "/", { authorization: `Bearer ${tok.token}` }))
        .toEqual({ status: 200, body: "hello from the guest\n", location: undefined })
      const hostOnce = await viaHost(tok.host, `/index.html?token=${tok.token}`)
      expect([hostOnce.status, hostOnce.location]).toEqual([303, "/index.html"])
      expect((await viaHost(tok.host.replace(/-[a-z0-9]+\./, `-${"a".repeat(24)}.`), "/")).status).toBe(404)
      expect((await viaHost("paws.test", "/healthz")).status).toBe(200) // other hosts: control itself

      // WebSocket through a token exposure: refused without the token; text and binary messages echoed
      const wsecho = join(world.dir, "wsecho")
      execFileSync("gcc", [
        "-static",
        "-O2",
        "-o",
        wsecho,
        fileURLToPath(new URL("./support/wsecho.c", import.meta.url)),
      ])
      expect((await paws(["cp", wsecho, `${id}:/tmp/wsecho`], cli)).code).toBe(0)
      const started = await paws([
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "chmod 755 /tmp/wsecho; /tmp/wsecho 8081 >/dev/null 2>&1 &",
      ], cli)
      expect(started.code, started.stderr).toBe(0)
      const wsExposure = await paws(["ports", "expose", id, "8081", "--access", "token"], cli)
      const wsUrl = /^http(:\/\/\S+)$/m.exec(wsExposure.stdout)![1]!
      const wsToken = /^token: (\S+)/m.exec(wsExposure.stdout)![1]!
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws${wsUrl}`)
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode!))
        ws.on("open", () => resolve(101))
      })
      expect(refused).toBe(401)
      const echoed = await new Promise<Array<string>>((resolve, reject) => {
        const ws = new WebSocket(`ws${wsUrl}chat`, { headers: { authorization: `Bearer ${wsToken}` } })
        const got: Array<string> = []
        ws.on("open", () => {
          ws.send("hello through the exposure")
          ws.send(Buffer.from([0, 1, 2, 255]))
        })
        ws.on("message", (data: Buffer, binary: boolean) => {
          got.push(binary ? `binary:${data.toString("hex")}` : `text:${data.toString()}`)
          if (got.length === 2) ws.close()
        })
        ws.on("close", () => resolve(got))
        ws.on("error", reject)
      })
      expect(echoed).toEqual(["text:hello through the exposure", "binary:000102ff"])

      // public: anyone with the URL; an unknown id is a 404; the list shows all four
      const pub = await expose("public")
      expect(await (await get(pub.url)).text()).toBe("hello from the guest\n")
      expect((await get(pub.url.replace(/\/p\/[^/]+\//, "/p/AAAAAAAAAAAAAAAAAAAAAAAA/"))).status).toBe(404)
      const listed = await paws(["ports", "list", id], cli)
      expect(listed.stdout.trim().split("\n").map((l) => l.split(/\s+/).slice(0, 2).join(" ")))
        .toEqual(["8080 token", "8080 pin", "8080 pin", "8081 token", "8080 public"])

      // paws shell in a real terminal (tmux, its own server): a PTY, its size following the terminal, Ctrl-C
      const tmuxServer = `paws-shell-${process.pid}`
      const tmux = (...args: Array<string>) => execFileSync("tmux", ["-L", tmuxServer, ...args], { encoding: "utf8" })
      const screen = () => tmux("capture-pane", "-p", "-t", "live")
      const waitScreen = (what: string, ok: (t: string) => boolean) =>
        waitUntil(what, () => Promise.resolve(screen()), ok, 30_000)
      const paneSize = () => tmux("display-message", "-p", "-t", "live", "#{pane_height} #{pane_width}").trim()
      // is a `sleep` running in the guest? (the minimal image's busybox has no pgrep)
      const sleeping = 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sleep ] && exit 0; done; exit 1'
      const exports = Object.entries(cli).map(([k, v]) => `${k}='${v}'`).join(" ")
      tmux(
        "new-session",
        "-d",
        "-s",
        "live",
        "-x",
        "100",
        "-y",
        "30",
        `env ${exports} ${process.execPath} ${binPath} shell ${id}; echo SHELL-EXITED=$?; sleep 30`,
      )
      try {
        tmux("send-keys", "-t", "live", "echo hi-$((40+2)); tty", "Enter")
        await waitScreen("a PTY", (t) => t.includes("hi-42") && /\/dev\/pts\/\d+/.test(t))
        tmux("send-keys", "-t", "live", "clear; stty size", "Enter")
        const before = paneSize()
        await waitScreen("size", (t) => t.includes(before))
        tmux("resize-window", "-t", "live", "-x", "90", "-y", "25")
        const after = paneSize()
        expect(after).not.toBe(before)
        tmux("send-keys", "-t", "live", "clear; stty size", "Enter")
        await waitScreen("resized", (t) => t.includes(after))
        tmux("send-keys", "-t", "live", "sleep 300", "Enter")
        await waitUntil(
          "sleep running",
          () => paws(["exec", id, "--", "sh", "-c", sleeping], cli),
          (r) => r.code === 0,
        )
        tmux("send-keys", "-t", "live", "C-c")
        tmux("send-keys", "-t", "live", "echo after-$((1+1))", "Enter")
        await waitScreen("interrupted", (t) => t.includes("after-2"))
        expect((await paws(["exec", id, "--", "sh", "-c", sleeping], cli)).code).toBe(1)
        tmux("send-keys", "-t", "live", "exit", "Enter")
        await waitScreen("exit", (t) => t.includes("SHELL-EXITED=0"))
      } finally {
        try {
          tmux("kill-server")
        } catch {
          // already gone
        }
      }
      const noKey = await paws(["shell", id], { ...cli, PAWS_API_KEY: reader })
      expect(noKey.code).toBe(1)
      expect(noKey.stderr).toMatch(/Forbidden/)

      // cancel ends it; exec and files are then a 409, and the node released everything
      const cancelled = await paws(["sessions", "cancel", id], cli)
      expect(cancelled.code, cancelled.stderr).toBe(0)
      await waitStatus(id, (s) => s === "cancelled")
      // exposures end with the session
      expect((await get(pub.url)).status).toBe(404)
      expect((await get(tok.url, { authorization: `Bearer ${tok.token}` })).status).toBe(404)
      const after = await api("POST", `/v1/sessions/${id}/exec`, { body: { command: ["true"] } })
      expect([after.status, after.json._tag]).toEqual([409, "SessionNotLive"])
      const afterCli = await paws(["exec", id, "--", "true"], cli)
      expect(afterCli.code).toBe(1)
      expect(afterCli.stderr).toMatch(/SessionNotLive/)
      await waitUntil(
        "released",
        () => Effect.runPromise(leftovers(world.netns)),
        (l) => l.taps.length + l.tables.length + l.processes.length === 0,
      )
    },
    300_000,
  )

  it(
    "a keepAlive script: the script's output and exit code are kept, and the VM stays up for exec afterwards",
    async () => {
      const created = await api("POST", "/v1/sessions", {
        body: {
          workload: { type: "script", script: "echo ran > /tmp/marker; echo done; exit 2", keepAlive: true },
          timeoutMs: 600_000,
        },
      })
      expect(created.status, created.text).toBe(202)
      const id = created.json.sessionId as string
      await waitStatus(id, (s) => s === "running")
      // the script has run (its marker is there) and the session is still running
      await waitUntil("marker", () => paws(["exec", id, "--", "cat", "/tmp/marker"], cli), (r) => r.stdout === "ran\n")
      expect((await api("GET", `/v1/sessions/${id}`)).json.status).toBe("running")
      expect((await paws(["sessions", "cancel", id], cli)).code).toBe(0)
      await waitStatus(id, (s) => s === "cancelled")
      const result = await waitUntil("result", () => api("GET", `/v1/sessions/${id}`), (r) => r.json.result !== null)
      expect(result.json.result).toMatchObject({ exitCode: 2, stdout: "done\n" })
    },
    300_000,
  )

  it("a kept-alive session ends by itself at its timeout, with its script's exit code as its status", async () => {
    const created = await api("POST", "/v1/sessions", {
      body: { workload: { type: "script", script: "echo up; exit 0", keepAlive: true }, timeoutMs: 15_000 },
    })
    const id = created.json.sessionId as string
    await waitStatus(id, (s) => s === "running")
    const up = await paws(["exec", id, "--", "echo", "still-up"], cli)
    expect(up.stdout).toBe("still-up\n")
    const ended = await waitStatus(id, (s) => s !== "running", 120_000)
    expect(ended.json).toMatchObject({ status: "completed", result: { exitCode: 0, stdout: "up\n" } })
    const after = await api("POST", `/v1/sessions/${id}/exec`, { body: { command: ["true"] } })
    expect(after.status).toBe(409)
  }, 300_000)
})
