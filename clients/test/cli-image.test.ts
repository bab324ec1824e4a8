import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { paws, startControl } from "./support/CliProcess.ts"

// `paws image …` input handling against a real control plane without nodes (no root needed);
// builds on real nodes are in e2e-snapshot.test.ts.

let control: Awaited<ReturnType<typeof startControl>>
let env: Record<string, string | undefined>

beforeAll(async () => {
  control = await startControl()
  const adminKey = readFileSync(join(control.dir, ".paws", "admin.key"), "utf8").trim()
  env = { PAWS_URL: control.url, PAWS_API_KEY: adminKey, PAWS_CONFIG: join(control.dir, "none.json") }
})
afterAll(() => control?.stop())

describe("paws image against a real control plane (no nodes)", () => {
  it("explains bad input and what is missing, with the fix", async () => {
    const both = await paws(["image", "snapshot", "x", "--setup", "/nonexistent", "--", "echo hi"], env)
    expect(both.code).toBe(1)
    expect(both.stderr).toMatch(/either with --setup FILE or after --, not both/)

    const unreadable = await paws(["image", "snapshot", "x", "--setup", join(control.dir, "missing.sh")], env)
    expect(unreadable.code).toBe(1)
    expect(unreadable.stderr).toMatch(/cannot read setup file .*missing\.sh/)

    const allowAlone = await paws(["image", "snapshot", "x", "--allow", "api.test"], env)
    expect(allowAlone.code).toBe(1)
    expect(allowAlone.stderr).toMatch(/--allow\/--cred apply to the setup script/)

    const unsetCred = await paws(
      ["image", "snapshot", "x", "--allow", "api.test", "--cred", "api.test:x-api-key=$PAWS_TEST_UNSET", "--", "true"],
      env,
    )
    expect(unsetCred.code).toBe(1)
    expect(unsetCred.stderr).toMatch(/reads \$PAWS_TEST_UNSET, which is not set/)

    const uncovered = await paws(
      ["image", "snapshot", "x", "--allow", "api.test", "--cred", "other.test:a=b", "--", "true"],
      env,
    )
    expect(uncovered.code).toBe(1)
    expect(uncovered.stderr).toMatch(/network\.credentials\.other\.test: names a host that is not in network\.allowOut/)

    const badTimeout = await paws(["image", "snapshot", "x", "--timeout", "soon"], env)
    expect(badTimeout.code).toBe(1)
    expect(badTimeout.stderr).toMatch(/--timeout "soon" must be a duration/)

    const file = join(control.dir, "setup.sh")
    writeFileSync(file, "echo set up\n")
    const noNode = await paws(["image", "snapshot", "x", "--setup", file], env)
    expect(noNode.code).toBe(1)
    expect(noNode.stderr).toMatch(/no node is connected to build on; start one \(`paws up` as root, or `paws node`\)/)

    const empty = await paws(["image", "snapshots"], env)
    expect(empty.code).toBe(0)
    expect(empty.stdout).toMatch(/no snapshots \(build one: paws image snapshot NAME -- SCRIPT\)/)
    const json = await paws(["image", "snapshots", "--json"], env)
    expect(JSON.parse(json.stdout)).toEqual([])

    const rm = await paws(["image", "rm", "nothing"], env)
    expect(rm.code).toBe(1)
    expect(rm.stderr).toMatch(/SnapshotNotFound: no snapshot "nothing" on any connected node/)
  })
})
