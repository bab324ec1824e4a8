import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { type ApiKey, ApiScope } from "@paws/core/ApiKeys"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const scopes = ApiScope.literals

const create = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("what the key is for")),
  scope: Flag.Literals("scope", scopes).pipe(
    Flag.withDescription("admin, sessions:write or read (repeatable)"),
    Flag.atLeast(1),
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const created = yield* api.keys.create({ payload: { name: input.name, scopes: input.scope } })
    yield* Console.error(
      `created key ${created.key.id} (${created.key.scopes.join(", ")}); the secret is shown only now:`,
    )
    yield* Console.log(created.secret)
  }))).pipe(Command.withDescription("Create an API key (its secret is printed once)"))

const list = Command.make("list", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const keys: ReadonlyArray<ApiKey> = yield* api.keys.list()
    for (const k of keys) {
      yield* Console.log(
        [k.id, k.name.padEnd(24), k.scopes.join(",").padEnd(20), k.revokedAt === null ? "active" : "revoked"].join(
          "  ",
        ),
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

export const keys = Command.make("keys").pipe(
  Command.withDescription("Manage API keys (admin)"),
  Command.withSubcommands([create, list, revoke]),
)
