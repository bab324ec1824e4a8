import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { NodeRpcs } from "../src/NodeRpc.ts"

const script = fileURLToPath(new URL("../scripts/deno-smoke.ts", import.meta.url))

describe("core under Deno", () => {
  it("decodes, validates, schedules and builds the RpcGroup", () => {
    // `deno` comes from the npm package in devDependencies (first on PATH under `npm run`).
    const out = execFileSync("deno", ["run", "--allow-read", "--allow-env", script], { encoding: "utf8" })
    const result = JSON.parse(out.trim().split("\n").at(-1)!)
    expect(result).toMatchObject({
      runtime: "deno",
      problems: 0,
      badRejected: true,
      chosen: "a",
      // The same group as Node builds it: every RPC, whatever is added later.
      rpcs: [...NodeRpcs.requests.keys()].sort(),
    })
    expect(result.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/)
  })
})
