// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { signWebhook } from "../../control/src/daemons/WebhookSignature.ts"
import { paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only, under the VM lock: `paws control` and `paws node` as real processes, a real VM. A
// signed webhook fires a daemon; its guest reads the payload at /input/event.json and the trigger
// kind in PAWS_TRIGGER, and nothing of the webhook's secret or signature is anywhere in it.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let control: PawsProcess
let node: PawsProcess
let url = ""
let key = ""

const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, body: text === "" ? undefined : JSON.parse(text) as any, text }
}

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
  key = readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim()
  const cli = { PAWS_URL: url, PAWS_API_KEY: key, PAWS_CONFIG: join(world.dir, "none.json") }
  const token = await paws(["nodes", "token", "create", "--name", "e2e"], cli)
  expect(token.code, token.stderr).toBe(0)
  node = startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: token.stdout.trim(),
    PAWS_NODE_ID: "e2e-daemon-node",
    PAWS_NODE_MAX_VMS: "1",
  })
  await waitUntil(
    "node registered",
    () => api("GET", "/v1/nodes").then((r) => r.body as Array<any>),
    (ns) => ns.some((n) => n.id === "e2e-daemon-node"),
    120_000,
  )
}, 240_000)

afterAll(async () => {
  await node?.kill("SIGTERM")
  await control?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("a daemon fired by a webhook, in a real VM", () => {
  it("the guest sees /input/event.json and PAWS_TRIGGER, and no secret or signature", async () => {
    const created = await api("POST", "/v1/daemons", {
      name: "e2e-hook",
      workload: {
        type: "script",
        script: 'echo "trigger=$PAWS_TRIGGER"; cat /input/event.json; echo; echo ---argv---; ' +
          "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; echo ---env---; env",
      },
      triggers: [{ kind: "webhook", name: "go" }],
    })
    expect(created.status, created.text).toBe(201)
    const secret: string = created.body.secrets.go
    const body = JSON.stringify({ marker: "payload-7f3a", items: [1, 2, 3] })
    const timestamp = String(Math.floor(Date.now() / 1000))
    const signature = signWebhook(secret, timestamp, body)
    const fired = await fetch(`${url}/v1/hooks/e2e-hook/go`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-paws-timestamp": timestamp, "x-paws-signature-256": signature },
      body,
    })
    expect(fired.status).toBe(202)
    const { sessionId } = await fired.json() as { sessionId: string }
    const done = await waitUntil(
      "session finished",
      () => api("GET", `/v1/sessions/${sessionId}`).then((r) => r.body),
      (s) => ["completed", "failed", "timeout"].includes(s.status),
      180_000,
    )
    expect(done.status, JSON.stringify(done)).toBe("completed")
    expect(done.daemon).toBe("e2e-hook")
    expect(done.trigger).toEqual({ kind: "webhook", name: "go" })
    const stdout: string = done.result.stdout
    expect(stdout).toContain("trigger=webhook")
    const event = JSON.parse(stdout.split("\n")[1]!)
    expect(event).toMatchObject({ kind: "webhook", trigger: "go", body: { marker: "payload-7f3a", items: [1, 2, 3] } })
    expect(stdout).not.toContain(secret)
    expect(stdout).not.toContain(signature.slice("sha256=".length))
    const [, argv, env] = stdout.split(/---argv---|---env---/)
    expect(argv).toContain("/workload/script.sh")
    expect(argv).not.toContain("payload-7f3a") // the payload is in a file, never in a command line
    expect(env).toContain("PAWS_TRIGGER=webhook")
    expect(env).not.toContain("payload-7f3a")
  }, 240_000)
})
