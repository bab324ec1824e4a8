import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { McpServerRequest, McpServerView } from "@paws/core/Mcp"
import type { McpGrant } from "@paws/core/McpGrant"
import { ApiClient } from "../ApiClient.ts"
import { CliInputError } from "../RunArguments.ts"
import { withApi } from "./shared.ts"

/**
 * `KEY=VALUE` pairs for secrets; a VALUE of `$NAME` or `env:NAME` is read from the caller's
 * environment, and a bare `KEY` reads `$KEY` — so secrets need not appear in argv (ps, shell history).
 */
const secretPairs = (flag: string, raw: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Record<string, string> = {}
    for (const item of raw) {
      const eq = item.indexOf("=")
      const key = eq === -1 ? item : item.slice(0, eq)
      const value = eq === -1 ? `$${item}` : item.slice(eq + 1)
      const envName = value.startsWith("$") ? value.slice(1) : value.startsWith("env:") ? value.slice(4) : undefined
      const resolved = envName === undefined ? value : process.env[envName]
      if (key === "") return yield* new CliInputError({ message: `--${flag} "${item}" needs a name before =` })
      if (resolved === undefined) {
        return yield* new CliInputError({ message: `--${flag} ${key} reads $${envName}, which is not set` })
      }
      out[key] = resolved
    }
    return out
  })

/** `--mcp NAME` or `--mcp NAME:tool1,tool2` as a session's grant (the API names any bad part). */
export const mcpGrantOf = (flag: string): McpGrant => {
  const colon = flag.indexOf(":")
  if (colon === -1) return flag
  return { server: flag.slice(0, colon), tools: flag.slice(colon + 1).split(",").filter((t) => t !== "") }
}

/**
 * The `--mcp` grants with `--mcp-approve NAME:tool1,tool2` folded in: those tools' calls wait for a
 * human. A server no `--mcp` grants is a CLI error saying so.
 */
export const mcpGrantsOf = (grants: ReadonlyArray<string>, approve: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out = grants.map(mcpGrantOf)
    for (const flag of approve) {
      const colon = flag.indexOf(":")
      const server = colon === -1 ? flag : flag.slice(0, colon)
      const tools = colon === -1 ? [] : flag.slice(colon + 1).split(",").filter((t) => t !== "")
      const i = out.findIndex((g) => (typeof g === "string" ? g : g.server) === server)
      if (tools.length === 0 || i === -1) {
        return yield* new CliInputError({
          message: `--mcp-approve "${flag}": use SERVER:tool1,tool2 for a server also given with --mcp`,
        })
      }
      const grant = out[i]!
      const base = typeof grant === "string" ? { server } : grant
      out[i] = { ...base, approve: [...(base.approve ?? []), ...tools] }
    }
    return out
  })

const add = Command.make("add", {
  name: Argument.String("name").pipe(
    Argument.withDescription("the server's name (its URL in the guest: https://mcp.paws.internal/NAME)"),
  ),
  command: Flag.String("command").pipe(
    Flag.withDescription("stdio server: the program the node runs (one instance per session)"),
    Flag.optional,
  ),
  arg: Flag.String("arg").pipe(
    Flag.withDescription("stdio server: an argument (repeatable; --arg=-y for one that starts with -)"),
    Flag.atLeast(0),
  ),
  env: Flag.String("env").pipe(
    Flag.withDescription("stdio server: secret env NAME=VALUE (VALUE '$VAR'/env:VAR, or bare NAME, from your env)"),
    Flag.atLeast(0),
  ),
  url: Flag.String("url").pipe(Flag.withDescription("http server: its Streamable HTTP URL"), Flag.optional),
  header: Flag.String("header").pipe(
    Flag.withDescription("http server: secret header Name=VALUE (VALUE '$VAR' or env:VAR from your env)"),
    Flag.atLeast(0),
  ),
  auditArguments: Flag.Boolean("audit-arguments").pipe(
    Flag.withDescription("record tool-call arguments (secrets redacted) in sessions' audit events"),
    Flag.withDefault(false),
  ),
  maxCallsPerMinute: Flag.Int("max-calls-per-minute").pipe(
    Flag.withDescription("at most N tool calls per session per minute (bursts up to N); default: no limit"),
    Flag.optional,
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const audit = {
      ...(input.auditArguments ? { auditArguments: true } : {}),
      ...(Option.isSome(input.maxCallsPerMinute) ? { maxCallsPerMinute: input.maxCallsPerMinute.value } : {}),
    }
    let payload: McpServerRequest
    if (Option.isSome(input.command) === Option.isSome(input.url)) {
      return yield* new CliInputError({
        message: "give either --command (a stdio server the node runs) or --url (a Streamable HTTP server)",
      })
    }
    if (Option.isSome(input.command)) {
      const env = yield* secretPairs("env", input.env)
      payload = { name: input.name, transport: "stdio", command: input.command.value, args: input.arg, env, ...audit }
    } else {
      const headers = yield* secretPairs("header", input.header)
      payload = { name: input.name, transport: "http", url: Option.getOrThrow(input.url), headers, ...audit }
    }
    const created = yield* api.mcpServers.create({ payload })
    yield* Console.log(`registered ${created.name}; sessions use it with "mcp": ["${created.name}"]`)
  }))).pipe(Command.withDescription("Register an MCP server (env/header values go to the vault)"))

const describe = (s: McpServerView) =>
  s.transport === "stdio"
    ? `${[s.command ?? "", ...(s.args ?? [])].join(" ")}${s.env?.length ? `  env: ${s.env.join(",")}` : ""}`
    : `${s.url ?? ""}${s.headers?.length ? `  headers: ${s.headers.join(",")}` : ""}`

const list = Command.make("list", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const servers: ReadonlyArray<McpServerView> = yield* api.mcpServers.list()
    for (const s of servers) yield* Console.log([s.name.padEnd(20), s.transport.padEnd(6), describe(s)].join("  "))
  }))).pipe(Command.withDescription("List MCP servers (names of their secrets, never values)"))

const rm = Command.make(
  "rm",
  { name: Argument.String("name").pipe(Argument.withDescription("server name")) },
  (input) =>
    withApi(Effect.gen(function* () {
      const api = yield* ApiClient
      yield* api.mcpServers.delete({ params: { name: input.name } })
      yield* Console.log(`${input.name} removed`)
    })),
).pipe(Command.withDescription("Remove an MCP server"))

export const mcp = Command.make("mcp").pipe(
  Command.withDescription("Manage MCP tool servers sessions may use (admin)"),
  Command.withSubcommands([add, list, rm]),
)
