import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { PGlite } from "@electric-sql/pglite"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { filesUnder, needlesOf, newCanary, scanFile, scanText } from "../../node/test/support/CanaryScan.ts"
import { leftovers } from "../../node/test/support/TestNode.ts"
import { paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"

// Root only: `paws up` (control + embedded database + local node in a test netns), a session
// run by the real CLI with canary credentials; then control's and the node's output, every API
// response and every row of every database table (and the database files) are scanned for them.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let up: PawsProcess
let url = ""
let cli: Record<string, string | undefined> = {}
let dataDir = ""

const canaryApi = newCanary()
const canaryEcho = newCanary()
const needles = [canaryApi, canaryEcho].flatMap(needlesOf)
const visible = `visible-${crypto.randomUUID()}`

beforeAll(async () => {
  world = await makeE2eWorld()
  const port = await freePort()
  dataDir = join(world.dir, ".paws")
  up = startPaws(["up"], {
    ...world.nodeEnv,
    PAWS_HOST: "127.0.0.1",
    PAWS_PORT: String(port),
    PAWS_DATA_DIR: dataDir,
    PAWS_NODE_ID: "e2e-canary",
    PAWS_LOG_LEVEL: "Debug",
  })
  url = (await up.waitFor(/paws control: (http:\/\/\S+)/))[1]!
  await up.waitFor(/local node: started/, 120_000)
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(dataDir, "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
}, 180_000)

afterAll(async () => {
  await up?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("secret canaries (full stack: paws up + CLI)", () => {
  it("no canary in control/node output, API responses or any database table", async () => {
    const script = [
      `echo "$VISIBLE"`,
      "curl -sS -o /dev/null -w 'api=%{http_code}\\n' -H 'x-api-key: guest' https://api.test/v1/messages",
      "curl -sS -D - -H 'authorization: Bearer guest' https://echo.test/echo",
      "echo done",
    ].join("; ")
    const run = await paws(
      [
        "run",
        "--allow",
        "api.test",
        "--allow",
        "echo.test",
        "--cred",
        "api.test:x-api-key=$CANARY_API",
        "--cred",
        "echo.test:authorization=$CANARY_ECHO",
        "--env",
        `VISIBLE=${visible}`,
        "--",
        script,
      ],
      { ...cli, CANARY_API: canaryApi, CANARY_ECHO: `Bearer ${canaryEcho}` },
    )
    expect(run.stdout, run.stderr).toContain("api=200")
    expect(run.stdout).toContain("done")

    // Every API response a user could fetch about it.
    const get = async (path: string) => {
      const res = await fetch(url + path, {
        headers: { authorization: `Bearer ${cli.PAWS_API_KEY}` },
        signal: AbortSignal.timeout(10_000),
      })
      return `${path} ${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`
    }
    const list = await get("/v1/sessions")
    const id = list.match(/"id":"([0-9a-f-]{36})"/)?.[1]
    expect(id, list).toBeDefined()
    const responses = [list]
    for (
      const path of [`/v1/sessions/${id}`, `/v1/sessions/${id}/events`, "/v1/nodes", "/v1/keys", "/v1/nodes/tokens"]
    ) {
      responses.push(await get(path))
    }
    const apiText = responses.join("\n")
    expect(apiText, "the API responses carry the session's output").toContain(visible)

    await up.kill("SIGTERM")
    const log = up.log()
    expect(log).toContain(id!)

    // Every row of every table, read back with PGlite from control's data dir.
    const db = await PGlite.create(join(dataDir, "pgdata"))
    const tables = await db.query<{ s: string; t: string }>(
      "SELECT table_schema AS s, table_name AS t FROM information_schema.tables " +
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    let dump = ""
    for (const { s, t } of tables.rows) {
      const rows = await db.query(`SELECT row_to_json(x)::text AS j FROM "${s}"."${t}" x`)
      dump += `${s}.${t}\n${rows.rows.map((r) => (r as { j: string }).j).join("\n")}\n`
    }
    await db.close()
    expect(tables.rows.length).toBeGreaterThan(2)
    expect(dump, "the dump holds the session's rows").toContain(visible)
    const dbFiles = filesUnder(join(dataDir, "pgdata")).map((f) => scanFile(f, needles))

    // Positive control: the scanner finds the canaries where they belong (the upstreams got them).
    const upstream = scanText(JSON.stringify(world.received), needles, "upstreams")
    expect(upstream.some((f) => f.secret === canaryApi)).toBe(true)
    expect(upstream.some((f) => f.secret === canaryEcho)).toBe(true)

    const hits = [
      ...scanText(run.stdout + run.stderr, needles, "paws run output"),
      ...scanText(apiText, needles, "API responses"),
      ...scanText(log, needles, "control + node output"),
      ...scanText(dump, needles, "database rows"),
      ...dbFiles.flatMap((d) => d.findings),
    ]
    console.log(
      `full-stack canaries: ${tables.rows.length} tables, ${dump.length} bytes of rows, ` +
        `${dbFiles.reduce((n, d) => n + d.bytes, 0)} bytes of database files, ${apiText.length} bytes of API ` +
        `responses, ${log.length} bytes of logs: ${hits.length} hits`,
    )
    expect(hits).toEqual([])
    expect(await Effect.runPromise(leftovers(world.netns))).toEqual({ taps: [], tables: [], processes: [] })
  }, 240_000)
})
