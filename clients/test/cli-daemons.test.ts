import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { paws, startControl } from "./support/CliProcess.ts"

let control: Awaited<ReturnType<typeof startControl>>
let env: Record<string, string | undefined>

beforeAll(async () => {
  control = await startControl()
  const adminKey = readFileSync(join(control.dir, ".paws", "admin.key"), "utf8").trim()
  env = { PAWS_URL: control.url, PAWS_API_KEY: adminKey, PAWS_CONFIG: join(control.dir, "none.json") }
})
afterAll(() => control?.stop())

describe("paws daemons against a real control plane", () => {
  it("create (secrets printed once), list, show, edit, run, logs, history, rm", async () => {
    const spec = join(control.dir, "daemon.json")
    writeFileSync(
      spec,
      JSON.stringify({
        name: "cli-bot",
        workload: { type: "script", script: "echo hi" },
        triggers: [{ kind: "webhook", name: "go" }, { kind: "cron", name: "nightly", schedule: "0 3 * * *" }],
      }),
    )
    const created = await paws(["daemons", "create", spec], env)
    expect(created.code, created.stderr).toBe(0)
    expect(created.stderr).toContain("shown only now")
    const secret = created.stdout.trim().split("\t")[1]!
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/)

    const list = await paws(["daemons", "list"], env)
    expect(list.stdout).toMatch(/cli-bot\s+enabled\s+queue\s+webhook:go,cron:nightly/)
    const shown = await paws(["daemons", "show", "cli-bot"], env)
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: "cli-bot", concurrency: "queue" })
    expect(shown.stdout + list.stdout).not.toContain(secret)

    const edited = await paws(["daemons", "edit", "cli-bot", "--concurrency", "skip", "--disable"], env)
    expect(edited.code, edited.stderr).toBe(0)
    expect(JSON.parse((await paws(["daemons", "show", "cli-bot"], env)).stdout)).toMatchObject({
      concurrency: "skip",
      enabled: false,
    })
    const nothing = await paws(["daemons", "edit", "cli-bot"], env)
    expect(nothing.code).toBe(1)
    expect(nothing.stderr).toContain("nothing to change")

    const run = await paws(["daemons", "run", "cli-bot"], env)
    expect(run.code, run.stderr).toBe(0)
    const id = run.stdout.trim()
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    const logs = await paws(["daemons", "logs", "cli-bot"], env)
    expect(logs.stderr).toContain(`session ${id} (manual:manual) pending`)

    const history = await paws(["daemons", "history", "cli-bot"], env)
    expect(history.code, history.stderr).toBe(0)
    expect(history.stderr).toContain("no LLM history recorded for cli-bot")
    const unknown = await paws(["daemons", "history", "no-such-bot"], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("DaemonNotFound: no daemon no-such-bot")

    const bad = join(control.dir, "bad.json")
    writeFileSync(
      bad,
      JSON.stringify({
        name: "bad",
        workload: { type: "script", script: "x" },
        triggers: [{ kind: "cron", name: "c", schedule: "nope" }],
      }),
    )
    const refused = await paws(["daemons", "create", bad], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("triggers[0].schedule")
    const missing = await paws(["daemons", "create", join(control.dir, "missing.json")], env)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain("cannot read")

    expect((await paws(["daemons", "rm", "cli-bot"], env)).code).toBe(0)
    const gone = await paws(["daemons", "show", "cli-bot"], env)
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain("DaemonNotFound")
  })
})
