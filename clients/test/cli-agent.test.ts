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

describe("paws run --agent against a real control plane", () => {
  it("creates an agent session on the claude-agent image with the words as its prompt", async () => {
    const created = await paws([
      "run",
      "-d",
      "--agent",
      "claude-code",
      "--model",
      "claude-sonnet-4-5",
      "--allow",
      "api.anthropic.com",
      "Review",
      "this repo",
    ], env)
    expect(created.code).toBe(0)
    const got = await paws(["sessions", "get", created.stdout.trim(), "--json"], env)
    expect(JSON.parse(got.stdout).spec).toMatchObject({
      snapshot: "claude-agent",
      workload: { type: "agent", agent: "claude-code", prompt: "Review this repo", model: "claude-sonnet-4-5" },
    })
  })

  it("names the fix for an unknown agent or a missing prompt", async () => {
    const unknown = await paws(["run", "--agent", "gpt-cli", "hi"], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("use one of: claude-code")
    const empty = await paws(["run", "--agent", "claude-code"], env)
    expect(empty.code).toBe(1)
    expect(empty.stderr).toContain(`paws run --agent claude-code "Review this repo"`)
  })
})
