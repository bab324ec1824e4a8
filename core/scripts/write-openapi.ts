/**
 * Writes `spec/openapi.json` from the HttpApi contract in core. With `--check` it writes
 * nothing and exits 1 when the committed file differs (CI and a test use that).
 */
import { OpenApi } from "effect/http-api"
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Api } from "../src/Api.ts"

export const specPath = fileURLToPath(new URL("../../spec/openapi.json", import.meta.url))

export const renderSpec = (): string => JSON.stringify(OpenApi.fromApi(Api), null, 2) + "\n"

if (import.meta.main) {
  const rendered = renderSpec()
  if (process.argv.includes("--check")) {
    let current = ""
    try {
      current = readFileSync(specPath, "utf8")
    } catch {
      // missing counts as stale
    }
    if (current !== rendered) {
      console.error(`${specPath} is stale: run \`npm run spec\` and commit it`)
      process.exit(1)
    }
    console.log(`${specPath} is current`)
  } else {
    writeFileSync(specPath, rendered)
    console.log(`wrote ${specPath}`)
  }
}
