import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { binPath, paws, startControl } from "./support/CliProcess.ts"

let control: Awaited<ReturnType<typeof startControl>>
let env: Record<string, string | undefined>

beforeAll(async () => {
  control = await startControl()
  const adminKey = readFileSync(join(control.dir, ".paws", "admin.key"), "utf8").trim()
  env = { PAWS_URL: control.url, PAWS_API_KEY: adminKey, PAWS_CONFIG: join(control.dir, "none.json") }
})
afterAll(() => control?.stop())

describe("paws CLI against a real control plane", () => {
  it("creates a detached session, lists, gets and cancels it", async () => {
    const created = await paws(["run", "-d", "--allow", "api.example.com", "--", "echo", "hi"], env)
    expect(created.code).toBe(0)
    const id = created.stdout.trim()
    expect(id).toMatch(/^[0-9a-f-]{36}$/)

    const list = await paws(["sessions", "list"], env)
    expect(list.stdout).toContain(id)
    expect(list.stdout).toContain("pending")
    // --node filters on the server: a pending session is on no node yet
    const onNode = await paws(["sessions", "list", "--node", "n-1"], env)
    expect(onNode.code, onNode.stderr).toBe(0)
    expect(onNode.stdout.trim()).toBe("no sessions")
    const badNode = await paws(["sessions", "list", "--node", "Not A Node"], env)
    expect(badNode.code).toBe(1)
    expect(badNode.stderr).toContain("--node")
    expect(badNode.stderr).toContain("must be 1-63 chars")

    const got = await paws(["sessions", "get", id, "--json"], env)
    expect(JSON.parse(got.stdout)).toMatchObject({ id, status: "pending", spec: { workload: { script: "echo hi" } } })

    const cancelled = await paws(["sessions", "cancel", id], env)
    expect(cancelled.stdout.trim()).toBe(`${id} cancelled`)
    const again = await paws(["sessions", "cancel", id], env)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("IllegalTransition")
  })

  it("reads a credential from the caller's env and never prints or returns its value", async () => {
    const secret = "canary-cli-" + Math.random().toString(36).slice(2)
    const created = await paws([
      "run",
      "-d",
      "--allow",
      "api.example.com",
      "--cred",
      "api.example.com:x-api-key=$PAWS_TEST_SECRET",
      "--",
      "true",
    ], { ...env, PAWS_TEST_SECRET: secret })
    expect(created.code).toBe(0)
    const got = await paws(["sessions", "get", created.stdout.trim(), "--json"], env)
    expect(JSON.parse(got.stdout).spec.network.credentials).toEqual({ "api.example.com": { headers: ["x-api-key"] } })
    expect(got.stdout + got.stderr + created.stdout + created.stderr).not.toContain(secret)
  })

  it("a wildcard --cred needs --allow-wildcard-credential; over a public suffix the CLI prints the API's warning", async () => {
    const cred = ["--allow", "*.github.io", "--cred", "*.github.io:x-api-key=$PAWS_TEST_SECRET"]
    const withSecret = { ...env, PAWS_TEST_SECRET: "sk-wildcard-cli-secret" }
    const refused = await paws(["run", "-d", ...cred, "--", "true"], withSecret)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("allowWildcardCredential")
    const accepted = await paws(["run", "-d", "--allow-wildcard-credential", ...cred, "--", "true"], withSecret)
    expect(accepted.code).toBe(0)
    expect(accepted.stderr).toMatch(/warning: network\.credentials\.\*\.github\.io: .*public suffix/)
    await paws(["sessions", "cancel", accepted.stdout.trim()], env)
  })

  it("creates a node token bound to a node id with control's capacity cap", async () => {
    const created = await paws(
      ["nodes", "token", "create", "--name", "rack-9", "--node-id", "n-rack-9", "--max-concurrent", "3"],
      env,
    )
    expect(created.code).toBe(0)
    const listed = await paws(["nodes", "token", "list", "--json"], env)
    expect(JSON.parse(listed.stdout)).toContainEqual(
      expect.objectContaining({ name: "rack-9", nodeId: "n-rack-9", maxConcurrent: 3 }),
    )
  })

  it("explains bad input and missing configuration with the fix", async () => {
    const badCred = await paws(["run", "--cred", "nohost", "--", "true"], env)
    expect(badCred.code).toBe(1)
    expect(badCred.stderr).toContain("HOST:Header=VALUE")

    const unsetCred = await paws([
      "run",
      "--allow",
      "a.example.com",
      "--cred",
      "a.example.com:k=$PAWS_UNSET_X",
      "--",
      "true",
    ], env)
    expect(unsetCred.stderr).toContain("PAWS_UNSET_X, which is not set")

    const ip = await paws(["run", "--allow", "10.1.2.3", "--", "true"], env)
    expect(ip.code).toBe(1)
    expect(ip.stderr).toContain("not an IP address")

    const empty = await paws(["run"], env)
    expect(empty.stderr).toContain("nothing to run")

    const noKey = await paws(
      ["nodes"],
      { PAWS_URL: control.url, PAWS_API_KEY: undefined, PAWS_CONFIG: "/nonexistent" },
      "/",
    )
    expect(noKey.code).toBe(1)
    expect(noKey.stderr).toContain("no API key: set PAWS_API_KEY")

    const wrongKey = await paws(["nodes"], { ...env, PAWS_API_KEY: "paws_" + "x".repeat(40) })
    expect(wrongKey.code).toBe(1)
    expect(wrongKey.stderr).toContain("PAWS_API_KEY")

    const down = await paws(["nodes"], { ...env, PAWS_URL: "http://127.0.0.1:9" })
    expect(down.code).toBe(1)
    expect(down.stderr).toContain("cannot reach the control plane")
  })

  it("creates, lists and revokes API keys; a revoked key is refused", async () => {
    const created = await paws(["keys", "create", "--name", "ci reader", "--scope", "read"], env)
    expect(created.code).toBe(0)
    const secret = created.stdout.trim()
    const id = /created key ([a-z0-9]{12})/.exec(created.stderr)![1]!
    const asReader = await paws(["sessions", "list"], { ...env, PAWS_API_KEY: secret })
    expect(asReader.code).toBe(0)
    const forbidden = await paws(["run", "-d", "--", "true"], { ...env, PAWS_API_KEY: secret })
    expect(forbidden.code).toBe(1)
    expect(forbidden.stderr).toContain("Forbidden")
    expect((await paws(["keys", "list"], env)).stdout).toContain(id)
    expect((await paws(["keys", "revoke", id], env)).stdout.trim()).toBe(`${id} revoked`)
    const revoked = await paws(["sessions", "list"], { ...env, PAWS_API_KEY: secret })
    expect(revoked.code).toBe(1)
  })

  it("registers, lists and removes MCP servers; a secret env value is read from the caller's env, never shown", async () => {
    const secret = "mcp-cli-" + Math.random().toString(36).slice(2)
    const added = await paws(
      ["mcp", "add", "gh", "--command", "npx", "--arg=-y", "--arg", "server-github", "--env", "GITHUB_TOKEN"],
      { ...env, GITHUB_TOKEN: secret },
    )
    expect(added.code, added.stderr).toBe(0)
    expect(added.stdout).toContain('"mcp": ["gh"]')
    const unset = await paws(["mcp", "add", "gh2", "--command", "x", "--env", "NOT_SET_ANYWHERE"], env)
    expect(unset.code).toBe(1)
    expect(unset.stderr).toContain("NOT_SET_ANYWHERE")
    const neither = await paws(["mcp", "add", "gh3"], env)
    expect(neither.code).toBe(1)
    expect(neither.stderr).toContain("--command")
    const listed = await paws(["mcp", "list"], env)
    expect(listed.stdout).toMatch(/gh\s+stdio\s+npx -y server-github\s+env: GITHUB_TOKEN/)
    expect(listed.stdout + added.stdout + added.stderr).not.toContain(secret)

    const run = await paws(["run", "-d", "--mcp", "gh:list_issues,get_issue", "--", "true"], env)
    expect(run.code, run.stderr).toBe(0)
    const got = await paws(["sessions", "get", run.stdout.trim(), "--json"], env)
    expect(JSON.parse(got.stdout).spec.mcp).toEqual([{ server: "gh", tools: ["list_issues", "get_issue"] }])
    const limited = await paws(["mcp", "add", "gh4", "--command", "x", "--max-calls-per-minute", "12"], env)
    expect(limited.code, limited.stderr).toBe(0)
    expect((await paws(["mcp", "rm", "gh4"], env)).code).toBe(0)
    const held = await paws(
      ["run", "-d", "--mcp", "gh:list_issues,merge_pr", "--mcp-approve", "gh:merge_pr", "--", "true"],
      env,
    )
    expect(held.code, held.stderr).toBe(0)
    const heldSpec = JSON.parse((await paws(["sessions", "get", held.stdout.trim(), "--json"], env)).stdout).spec
    expect(heldSpec.mcp).toEqual([{ server: "gh", tools: ["list_issues", "merge_pr"], approve: ["merge_pr"] }])
    const stray = await paws(["run", "-d", "--mcp-approve", "gh:merge_pr", "--", "true"], env)
    expect(stray.code).toBe(1)
    expect(stray.stderr).toContain("--mcp-approve")
    const unknown = await paws(["run", "-d", "--mcp", "nope", "--", "true"], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("nope")

    expect((await paws(["mcp", "rm", "gh"], env)).stdout.trim()).toBe("gh removed")
    const again = await paws(["mcp", "rm", "gh"], env)
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("gh")
  })

  it("Ctrl-C on `paws run` cancels the session", async () => {
    const child = spawn(process.execPath, [binPath, "run", "--", "sleep", "100"], { env: { ...process.env, ...env } })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (/session \S+ pending/.test(stderr)) {
          clearInterval(check)
          resolve()
        }
      }, 50)
    })
    const id = /session (\S+) pending/.exec(stderr)![1]!
    const exited = new Promise<number | null>((r) => child.on("close", r))
    child.kill("SIGINT")
    await exited
    expect(stderr).toContain(`cancelled session ${id}`)
    const got = await paws(["sessions", "get", id, "--json"], env)
    expect(JSON.parse(got.stdout).status).toBe("cancelled")
  })

  it("renders `paws top` once", async () => {
    const out = await paws(["top", "--once"], env)
    expect(out.code).toBe(0)
    expect(out.stdout).toContain("paws top")
    expect(out.stdout).toContain("NODE")
    expect(out.stdout).toContain("(no nodes)")
  })
})
