import {
  grantApprove,
  grantServer,
  grantTools,
  InvalidRequest,
  type McpDispatchServer,
  type McpGrant,
  McpServerExists,
  McpServerNotFound,
  type McpServerRequest,
  McpServerView,
} from "@paws/core"
import { Context, Data, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { iso, json, rowDecoder } from "./Rows.ts"
import { Vault } from "./Vault.ts"
import type { VaultError } from "./Vault.ts"

/** A session names an MCP server that is no longer registered (removed after it was queued). */
export class McpServerMissing extends Data.TaggedError("McpServerMissing")<{ readonly name: string }> {}

interface Row {
  readonly name: string
  readonly config: unknown
  readonly secrets: string | null
  readonly created_at: unknown
}

const decodeView = rowDecoder(McpServerView, "MCP server")
const vaultContext = (name: string) => `mcp-server:${name}`

const toView = (row: Row): McpServerView =>
  decodeView({ ...(json(row.config) as object), createdAt: iso(row.created_at) })

/** Strings PostgreSQL jsonb cannot hold (NUL, lone surrogates), named by field. */
const storableProblems = (request: McpServerRequest) => {
  const problems: Array<{ path: string; message: string }> = []
  const check = (path: string, value: string) => {
    if (value.includes("\u0000")) problems.push({ path, message: "must not contain NUL (U+0000)" })
    else if (!value.isWellFormed()) problems.push({ path, message: "must be valid Unicode (no lone surrogates)" })
  }
  const wrong = (field: string) =>
    problems.push({ path: field, message: `is not used with transport ${JSON.stringify(request.transport)}` })
  if (request.transport === "stdio") {
    if (request.command === undefined) problems.push({ path: "command", message: "is required for a stdio server" })
    else check("command", request.command)
    if (request.url !== undefined) wrong("url")
    if (request.headers !== undefined) wrong("headers")
    request.args?.forEach((a, i) => check(`args[${i}]`, a))
    for (const [k, v] of Object.entries(request.env ?? {})) check(`env.${k}`, v)
  } else {
    if (request.url === undefined) problems.push({ path: "url", message: "is required for an http server" })
    else check("url", request.url)
    for (const field of ["command", "args", "env"] as const) if (request[field] !== undefined) wrong(field)
  }
  return problems
}

/**
 * The MCP server registry: registrations stored with secret names only, the values of `env`
 * (stdio) or `headers` (http) sealed in the vault, opened only to build a session's dispatch.
 */
export class McpServers extends Context.Service<McpServers, {
  readonly create: (request: McpServerRequest) => Effect.Effect<McpServerView, McpServerExists | InvalidRequest>
  readonly list: Effect.Effect<ReadonlyArray<McpServerView>>
  readonly remove: (name: string) => Effect.Effect<void, McpServerNotFound>
  /** Names among `names` that are not registered. */
  readonly missing: (names: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>>
  /** A session's grants as the node needs them: registrations with secrets in clear, plus tool allowlists. */
  readonly resolve: (
    grants: ReadonlyArray<McpGrant>,
  ) => Effect.Effect<ReadonlyArray<McpDispatchServer>, McpServerMissing | VaultError>
}>()("paws/control/McpServers") {
  static readonly layer = Layer.effect(
    McpServers,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const vault = yield* Vault

      const create = Effect.fn("McpServers.create")(function* (request: McpServerRequest) {
        const problems = storableProblems(request)
        if (problems.length > 0) {
          return yield* new InvalidRequest({
            message: problems.map((p) => `${p.path}: ${p.message}`).join("; "),
            issues: problems,
          })
        }
        const limit = request.maxCallsPerMinute === undefined ? {} : { maxCallsPerMinute: request.maxCallsPerMinute }
        const secretValues = request.transport === "stdio" ? request.env : request.headers
        const config = request.transport === "stdio"
          ? {
            name: request.name,
            transport: "stdio",
            command: request.command ?? "",
            args: request.args ?? [],
            env: Object.keys(request.env ?? {}),
            auditArguments: request.auditArguments ?? false,
            ...limit,
          }
          : {
            name: request.name,
            transport: "http",
            url: request.url,
            headers: Object.keys(request.headers ?? {}),
            auditArguments: request.auditArguments ?? false,
            ...limit,
          }
        const secrets = secretValues === undefined || Object.keys(secretValues).length === 0
          ? null
          : vault.seal(JSON.stringify(secretValues), vaultContext(request.name))
        const rows = yield* sql<Row>`INSERT INTO mcp_servers (name, config, secrets)
          VALUES (${request.name}, ${JSON.stringify(config)}::jsonb, ${secrets})
          ON CONFLICT (name) DO NOTHING RETURNING name, config, secrets, created_at`.pipe(Effect.orDie)
        if (rows.length === 0) {
          return yield* new McpServerExists({
            name: request.name,
            message: `an MCP server named ${request.name} exists; remove it first to replace it`,
          })
        }
        yield* Effect.logInfo("MCP server registered").pipe(Effect.annotateLogs({ name: request.name }))
        return toView(rows[0]!)
      })

      const list = sql<Row>`SELECT name, config, secrets, created_at FROM mcp_servers ORDER BY name`.pipe(
        Effect.map((rows) => rows.map(toView)),
        Effect.orDie,
      )

      const remove = Effect.fn("McpServers.remove")(function* (name: string) {
        const rows = yield* sql`DELETE FROM mcp_servers WHERE name = ${name} RETURNING name`.pipe(Effect.orDie)
        if (rows.length === 0) {
          return yield* new McpServerNotFound({ name, message: `no MCP server named ${name}` })
        }
      })

      const byNames = (names: ReadonlyArray<string>) =>
        names.length === 0
          ? Effect.succeed([] as ReadonlyArray<Row>)
          : sql<Row>`SELECT name, config, secrets, created_at FROM mcp_servers WHERE name IN ${sql.in(names)}`.pipe(
            Effect.orDie,
          )

      const missing = (names: ReadonlyArray<string>) =>
        byNames(names).pipe(
          Effect.map((rows) => {
            const known = new Set(rows.map((r) => r.name))
            return names.filter((n) => !known.has(n))
          }),
        )

      const resolve = Effect.fn("McpServers.resolve")(function* (grants: ReadonlyArray<McpGrant>) {
        const rows = new Map((yield* byNames(grants.map(grantServer))).map((r) => [r.name, r]))
        const out: Array<McpDispatchServer> = []
        for (const grant of grants) {
          const row = rows.get(grantServer(grant))
          if (row === undefined) return yield* new McpServerMissing({ name: grantServer(grant) })
          const view = toView(row)
          const secrets = row.secrets === null
            ? {}
            : JSON.parse(yield* vault.open(row.secrets, vaultContext(row.name))) as Record<string, string>
          const tools = grantTools(grant)
          const approve = grantApprove(grant)
          out.push({
            name: view.name,
            transport: view.transport,
            ...(view.transport === "stdio"
              ? { command: view.command ?? "", args: view.args ?? [], env: secrets }
              : { url: view.url ?? "", headers: secrets }),
            auditArguments: view.auditArguments,
            ...(tools === undefined ? {} : { tools }),
            ...(approve === undefined || approve.length === 0 ? {} : { approve }),
            ...(view.maxCallsPerMinute === undefined ? {} : { maxCallsPerMinute: view.maxCallsPerMinute }),
          })
        }
        return out
      })

      return McpServers.of({ create, list, remove, missing, resolve })
    }),
  )
}
