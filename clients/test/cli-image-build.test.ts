import { describe, expect, it } from "@effect/vitest"
import { existsSync } from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import { paws } from "./support/CliProcess.ts"

const env = { PAWS_DATA_DIR: process.env.PAWS_TEST_DATA_DIR ?? join(os.tmpdir(), "paws-test-data") }

describe("paws image build / list (local images)", () => {
  it("lists the catalogue, built or not", async () => {
    const list = await paws(["image", "list"], env)
    expect(list.code).toBe(0)
    for (const name of ["claude-agent", "debian", "default", "node", "python"]) {
      expect(list.stdout).toMatch(new RegExp(`^${name} `, "m"))
    }
  })

  it("names the fix for bad recipes before building anything", async () => {
    const catalogue = await paws(["image", "build", "debian", "--apt", "jq"], env)
    expect(catalogue.code).toBe(1)
    expect(catalogue.stderr).toContain("--from debian")
    const file = await paws(["image", "build", "mine", "--file", "/no/such/file:/etc/x"], env)
    expect(file.code).toBe(1)
    expect(file.stderr).toContain("SRC:/absolute/dest")
    const npm = await paws(["image", "build", "mine", "--npm", "left-pad"], env)
    expect(npm.code).toBe(1)
    expect(npm.stderr).toContain("exact version")
    const name = await paws(["image", "build", "Bad/Name"], env)
    expect(name.code).toBe(1)
    expect(name.stderr).toContain("a-z 0-9")
    expect(existsSync(join(env.PAWS_DATA_DIR, "images", ".recipes", "mine.json"))).toBe(false)
  })
})
