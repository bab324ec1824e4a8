// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { ConfigProvider, Context, Effect, Layer, Logger, References, type Scope } from "effect"
import { HttpServer } from "effect/http"
import { PGlite } from "@electric-sql/pglite"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ControlServer, serverUrl } from "../src/ControlServer.ts"
import { type NodeRegistry, NodeRegistry as NodeRegistryTag } from "../src/NodeRegistry.ts"
import { TestPostgres } from "./TestPostgres.ts"

/** Where a test control plane keeps its state: a temp data dir, plus a fresh PostgreSQL database or PGlite. */
export class TestDatabase extends Context.Service<TestDatabase, {
  readonly name: "pglite" | "postgres"
  readonly fresh: Effect.Effect<
    { readonly dataDir: string; readonly databaseUrl: string | undefined },
    never,
    Scope.Scope
  >
}>()("paws/test/TestDatabase") {}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "paws-test-control-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
)

/**
 * A fresh PGlite data dir takes ~13 s to initialise (initdb in WebAssembly); copying an
 * initialised one takes well under a second. The template is made once per machine and
 * PGlite version, atomically (rename), so parallel test workers can race safely.
 */
const pgliteTemplate = async (): Promise<string> => {
  const template = join(tmpdir(), "paws-test-pglite-template-0.5.14")
  if (existsSync(template)) return template
  const building = mkdtempSync(join(tmpdir(), "paws-test-pglite-building-"))
  const db = await PGlite.create(building)
  await db.close()
  try {
    renameSync(building, template)
  } catch {
    rmSync(building, { recursive: true, force: true }) // another worker won the race
  }
  return template
}

export const pgliteBackend = Layer.succeed(
  TestDatabase,
  TestDatabase.of({
    name: "pglite",
    fresh: Effect.gen(function* () {
      const dataDir = yield* tempDir
      const template = yield* Effect.promise(pgliteTemplate)
      mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      cpSync(template, join(dataDir, "pgdata"), { recursive: true })
      return { dataDir, databaseUrl: undefined }
    }),
  }),
)

export const postgresBackend = Layer.effect(
  TestDatabase,
  Effect.gen(function* () {
    const pg = yield* TestPostgres
    return TestDatabase.of({
      name: "postgres",
      fresh: Effect.gen(function* () {
        const dataDir = yield* tempDir
        return { dataDir, databaseUrl: yield* pg.freshDatabase }
      }),
    })
  }),
).pipe(Layer.provide(TestPostgres.layer))

/** Both databases; every HTTP suite runs against each. */
export const backends = [
  { name: "pglite", layer: pgliteBackend },
  { name: "postgres", layer: postgresBackend },
] as const

export interface ControlHandle {
  readonly url: string
  readonly adminKey: string
  readonly registry: NodeRegistry["Service"]
  readonly dataDir: string
}

const quiet = Layer.mergeAll(
  Logger.layer([Logger.consoleJson]),
  Layer.succeed(References.MinimumLogLevel, process.env["PAWS_TEST_LOG_LEVEL"] as "Info" ?? "Error"),
)

/** Every log line (JSON, Debug and up) into `lines`: for tests that check what is never logged. */
export const capturingLogs = (lines: Array<string>) =>
  Layer.mergeAll(
    Logger.layer([Logger.map(Logger.formatJson, (line) => void lines.push(line))]),
    Layer.succeed(References.MinimumLogLevel, "Debug"),
  )

/** Starts a control plane on a random loopback port for the current scope. */
export const startControl = (
  store: { readonly dataDir: string; readonly databaseUrl: string | undefined },
  env: Record<string, string> = {},
  logging: Layer.Layer<never> = quiet,
): Effect.Effect<ControlHandle, never, Scope.Scope> =>
  Effect.gen(function* () {
    const config = ConfigProvider.fromUnknown({
      PAWS_HOST: "127.0.0.1",
      PAWS_PORT: "0",
      PAWS_DATA_DIR: store.dataDir,
      PAWS_DISPATCH_INTERVAL_MS: "200",
      ...(store.databaseUrl === undefined ? {} : { DATABASE_URL: store.databaseUrl, PAWS_DB_MAX_CONNECTIONS: "4" }),
      ...env,
    })
    const context = yield* Layer.build(
      ControlServer.pipe(Layer.provide(ConfigProvider.layer(config)), Layer.provide(logging)),
    ).pipe(Effect.orDie)
    const url = yield* serverUrl.pipe(
      Effect.provideService(HttpServer.HttpServer, Context.get(context, HttpServer.HttpServer)),
    )
    return {
      url,
      adminKey: readFileSync(join(store.dataDir, "admin.key"), "utf8").trim(),
      registry: Context.get(context, NodeRegistryTag),
      dataDir: store.dataDir,
    }
  })

/** A fresh database + control plane, e.g. as a suite-wide layer. */
export class TestControl extends Context.Service<TestControl, ControlHandle>()("paws/test/TestControl") {
  static readonly layer = (env: Record<string, string> = {}) =>
    Layer.effect(
      TestControl,
      Effect.gen(function* () {
        const db = yield* TestDatabase
        return yield* startControl(yield* db.fresh, env)
      }),
    ).pipe(Layer.provideMerge(quiet))
}

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: any
  readonly text: string
}

/** One real HTTP request to the control plane. */
export const call = (
  control: ControlHandle,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; key?: string | null; headers?: Record<string, string> } = {},
): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    const key = options.key === undefined ? control.adminKey : options.key
    if (key !== null) headers["authorization"] = `Bearer ${key}`
    let body: string | undefined
    if (options.raw !== undefined) body = options.raw
    else if (options.body !== undefined) body = JSON.stringify(options.body)
    if (body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json"
    const res = await fetch(control.url + path, { method, headers, ...(body === undefined ? {} : { body }) })
    const text = await res.text()
    let parsed: unknown = undefined
    try {
      parsed = text === "" ? undefined : JSON.parse(text)
    } catch {
      parsed = undefined
    }
    return { status: res.status, headers: res.headers, body: parsed, text }
  })

/** Polls `GET /v1/sessions/{id}` until `done` holds (or fails the test after `ms`). */
export const waitForSession = (
  control: ControlHandle,
  id: string,
  done: (session: any) => boolean,
  ms = 10_000,
): Effect.Effect<any> =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (true) {
      const reply = yield* call(control, "GET", `/v1/sessions/${id}`)
      if (reply.status === 200 && done(reply.body)) return reply.body
      if (Date.now() > deadline) return yield* Effect.die(new Error(`session ${id} never matched; last: ${reply.text}`))
      yield* Effect.sleep(25)
    }
  })

/** Reads an SSE response to its end and parses its frames. */
export const readEvents = (
  control: ControlHandle,
  id: string,
  lastEventId?: string,
): Effect.Effect<
  { status: number; contentType: string | null; frames: Array<{ id: string; event: string; data: any }> }
> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${control.adminKey}` }
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId
    const res = await fetch(`${control.url}/v1/sessions/${id}/events`, {
      headers,
      signal: AbortSignal.timeout(15_000),
    })
    const text = await res.text()
    const frames = text.split("\n\n").filter((f) => f.startsWith("id:")).map((f) => {
      const fields = Object.fromEntries(
        f.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
      )
      return { id: fields["id"]!, event: fields["event"]!, data: JSON.parse(fields["data"]!) }
    })
    return { status: res.status, contentType: res.headers.get("content-type"), frames }
  })

export const script = (text: string, extra: Record<string, unknown> = {}) => ({
  workload: { type: "script", script: text },
  ...extra,
})
