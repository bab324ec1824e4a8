import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
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

describe("paws projects, keys limits and approvals against a real control plane", () => {
  it("creates a project and its keys, decides a waiting session, and names bad limits", async () => {
    const created = await paws(["projects", "create", "ops", "--max-sessions", "5", "--description", "ops team"], env)
    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout).toContain("sessions 5")
    const listed = await paws(["projects", "list"], env)
    expect(listed.stdout).toMatch(/^default/m)
    expect(listed.stdout).toMatch(/^ops/m)

    const writerKey = await paws(
      ["keys", "create", "--name", "agent", "--scope", "sessions:write", "--project", "ops"],
      env,
    )
    expect(writerKey.stderr).toContain("in project ops")
    const approverKey = await paws(
      ["keys", "create", "--name", "human", "--scope", "approve", "--project", "ops", "--rps", "50"],
      env,
    )
    const writer = { ...env, PAWS_API_KEY: writerKey.stdout.trim() }
    const approver = { ...env, PAWS_API_KEY: approverKey.stdout.trim() }

    const run = await paws(
      [
        "run",
        "-d",
        "--require-approval",
        "--allow",
        "api.github.com",
        "--hold",
        "POST api.github.com/repos/*/merges",
        "--",
        "deploy",
        "--prod",
      ],
      writer,
    )
    expect(run.code, run.stderr).toBe(0)
    const sessionId = run.stdout.trim()
    const got = await paws(["sessions", "get", sessionId, "--json"], writer)
    expect(JSON.parse(got.stdout)).toMatchObject({
      status: "awaiting_approval",
      project: "ops",
      spec: { network: { approvals: ["POST api.github.com/repos/*/merges"] }, requiresApproval: true },
    })
    const noneHeld = await paws(["approvals", "egress", "list", sessionId], approver)
    expect(noneHeld.stdout).toContain("no held requests")

    const waiting = await paws(["approvals", "list"], approver)
    expect(waiting.stdout).toContain(sessionId)
    expect(waiting.stdout).toContain("deploy --prod")
    expect((await paws(["approvals", "list"], env)).stdout).toContain("nothing awaits approval")

    const byAgent = await paws(["approvals", "approve", sessionId], writer)
    expect(byAgent.code).toBe(1)
    expect(byAgent.stderr).toContain("approve")
    const approved = await paws(["approvals", "approve", sessionId], approver)
    expect(approved.stdout.trim()).toBe(`${sessionId} pending`)
    const again = await paws(["approvals", "deny", sessionId], approver)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("not awaiting approval")

    const keys = await paws(["keys", "list"], env)
    const approverId = keys.stdout.split("\n").find((l) => l.includes("human"))!.split(" ")[0]!
    const bad = await paws(["keys", "limits", approverId, "--rps", "-5"], env)
    expect(bad.code).toBe(1)
    // The typed client checks the contract before sending: the field and its range are named.
    expect(bad.stderr).toContain(`["limits"]["requestsPerSecond"]`)
    expect(bad.stderr).toContain("from 1 to 10000")
    const lifted = await paws(["keys", "limits", approverId, "--rps", "-1", "--max-sessions", "2"], env)
    expect(lifted.stdout).toContain(`"maxConcurrentSessions":2`)
    expect(lifted.stdout).not.toContain("requestsPerSecond")

    const busy = await paws(["projects", "delete", "ops"], env)
    expect(busy.code).toBe(1)
    expect(busy.stderr).toContain("unfinished")
  })
})
