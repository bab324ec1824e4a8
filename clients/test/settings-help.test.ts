import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { controlSettings } from "../../control/src/ControlConfig.ts"
import { nodeSettings } from "../../node/src/NodeConfig.ts"
import { clientSettings } from "../src/ClientConfig.ts"
import { paws } from "./support/CliProcess.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const tables = { client: clientSettings, control: controlSettings, node: nodeSettings }
/** The only files that may read an environment setting: the three tables. */
const tableFiles = ["clients/src/ClientConfig.ts", "control/src/ControlConfig.ts", "node/src/NodeConfig.ts"]

const sources = (dir: string): Array<string> =>
  readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) return sources(path)
    return path.endsWith(".ts") ? [path] : []
  })

describe("settings: defined once, listed by --help", () => {
  it("paws --help lists every setting of the client, control and node tables with its default", async () => {
    const help = await paws(["--help"], {})
    assert.strictEqual(help.code, 0, help.stderr)
    for (const [table, settings] of Object.entries(tables)) {
      for (const s of Object.values(settings)) {
        const line = help.stdout.split("\n").find((l) => l.trimStart().startsWith(`${s.name} `))
        assert.isDefined(line, `${table} setting ${s.name} missing from --help`)
        assert.include(line!, `(default: ${s.shown})`)
      }
    }
  })

  it("no service reads a PAWS_* variable (or DATABASE_URL) except through its package's table", () => {
    const readers = ["core/src", "control/src", "node/src", "proxy/src", "clients/src"].flatMap(sources)
      .filter((f) => !tableFiles.includes(f))
      .filter((f) => /Config\.[A-Za-z]+\(\s*"(PAWS_|DATABASE_URL)/.test(readFileSync(join(root, f), "utf8")))
    assert.deepStrictEqual(readers, [])
  })
})
