import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { renderSpec, specPath } from "../../core/scripts/write-openapi.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))

describe("spec/openapi.json", () => {
  it("is generated from the current core HttpApi (run `npm run spec` when this fails)", () => {
    assert.strictEqual(readFileSync(specPath, "utf8"), renderSpec())
  })

  it("passes redocly lint", async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [`${root}node_modules/@redocly/cli/bin/cli.js`, "lint", "spec/openapi.json", "--config", "spec/redocly.yaml"],
      { cwd: root },
    ).catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`redocly lint failed:\n${e.stdout}\n${e.stderr}`)
    })
    assert.match(stdout + stderr, /valid/)
    assert.notMatch(stdout + stderr, /warning/i)
  }, 60_000)
})
