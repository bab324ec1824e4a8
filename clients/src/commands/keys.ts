import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { type ApiKey, ApiScope } from "@paws/core/ApiKeys"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const scopes = ApiScope.literals

const optionalInt = (name: string, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(`${description} (-1 removes the limit)`), Flag.optional)
const keyLimitFlags = {
  rps: optionalInt("rps", "API requests per second (token bucket)"),
  burst: optionalInt("burst", "requests allowed at once before --rps applies"),
  maxSessions: optionalInt("max-sessions", "max unfinished sessions created with this key"),
}
/** Flags given become limits (-1 = null, no limit); absent ones are left out (unchanged). */
const keyLimitsOf = (
  input: { rps: Option.Option<number>; burst: Option.Option<number>; maxSessions: Option.Option<number> },
) =>
  Object.fromEntries(
    ([["requestsPerSecond", input.rps], ["requestsBurst", input.burst], [
      "maxConcurrentSessions",
      input.maxSessions,
    ]] as const)
      .flatMap(([k, o]) => Option.isSome(o) ? [[k, o.value === -1 ? null : o.value]] : []),
  )

const create = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("what the key is for")),
  scope: Flag.Literals("scope", scopes).pipe(
    Flag.withDescription("admin, sessions:write, read or approve (repeatable)"),
    Flag.atLeast(1),
  ),
  project: Flag.String("project").pipe(
    Flag.withDescription("the key's project (default: this key's; another needs an instance admin key)"),
    Flag.optional,
  ),
  ...keyLimitFlags,
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const created = yield* api.keys.create({
      payload: {
        name: input.name,
        scopes: input.scope,
        limits: keyLimitsOf(input),
        ...Option.match(input.project, { onNone: () => ({}), onSome: (project) => ({ project }) }),
      },
    })
    yield* Console.error(
      `created key ${created.key.id} in project ${created.key.project} (${
        created.key.scopes.join(", ")
      }); the secret is shown only now:`,
    )
    yield* Console.log(created.secret)
  }))).pipe(Command.withDescription("Create an API key (its secret is printed once)"))

const list = Command.make("list", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const keys: ReadonlyArray<ApiKey> = yield* api.keys.list()
    for (const k of keys) {
      yield* Console.log(
        [
          k.id,
          k.project.padEnd(16),
          k.name.padEnd(24),
          k.scopes.join(",").padEnd(20),
          k.revokedAt === null ? "active" : "revoked",
        ].join("  "),
      )
    }
  }))).pipe(Command.withDescription("List API keys (never their secrets)"))

const revoke = Command.make(
  "revoke",
  { id: Argument.String("id").pipe(Argument.withDescription("key id")) },
  (input) =>
    withApi(Effect.gen(function* () {
      const api = yield* ApiClient
      const k = yield* api.keys.revoke({ params: { id: input.id } })
      yield* Console.log(`${k.id} revoked`)
    })),
).pipe(Command.withDescription("Revoke an API key"))

const limits = Command.make("limits", {
  id: Argument.String("id").pipe(Argument.withDescription("key id")),
  ...keyLimitFlags,
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const k = yield* api.keys.update({ params: { id: input.id }, payload: { limits: keyLimitsOf(input) } })
    yield* Console.log(`${k.id} limits: ${JSON.stringify(k.limits)}`)
  }))).pipe(Command.withDescription("Change an API key's request rate or session limits"))

export const keys = Command.make("keys").pipe(
  Command.withDescription("Manage API keys (admin)"),
  Command.withSubcommands([create, list, revoke, limits]),
)
