import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const sdkDir = fileURLToPath(new URL("../", import.meta.url))
// Resolved from the SDK's workspace, where TypeScript 5 (openapi-typescript's peer) is installed.
const cli = join(
  dirname(createRequire(`${sdkDir}package.json`).resolve("openapi-typescript/package.json")),
  "bin/cli.js",
)

describe("@paws/sdk generated types", () => {
  it("match spec/openapi.json (run `npm run spec` or `npm run sdk:generate` when this fails)", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [cli, "../../spec/openapi.json"], {
      cwd: sdkDir,
      maxBuffer: 16 * 1024 * 1024,
    })
    assert.strictEqual(readFileSync(`${sdkDir}src/generated/schema.ts`, "utf8"), stdout)
  }, 60_000)
})
