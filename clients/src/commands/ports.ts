import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { SessionId } from "@paws/core/Ids"
import { portAccessModes } from "@paws/core/PortExposure"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const sessionId = Argument.String("id").pipe(Argument.withDescription("session id (a running session)"))

const expose = Command.make("expose", {
  id: sessionId,
  port: Argument.Int("port").pipe(Argument.withDescription("guest TCP port")),
  access: Flag.Literals("access", portAccessModes).pipe(
    Flag.withDescription("who may open it: token, pin (shown once), sso (console sign-in with read) or public"),
    Flag.withDefault("token" as const),
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const e = yield* api.ports.expose({
      params: { id: input.id as SessionId },
      payload: { port: input.port, access: input.access },
    })
    yield* Console.log(e.url)
    if (e.hostUrl !== undefined) yield* Console.log(`host: ${e.hostUrl}`)
    if (e.token !== undefined) yield* Console.log(`token: ${e.token}  (shown once; send as Bearer or ?token= once)`)
    if (e.pin !== undefined) yield* Console.log(`pin: ${e.pin}  (shown once)`)
  }))).pipe(Command.withDescription("Expose a guest port at a URL on control (until the session ends)"))

const list = Command.make("list", { id: sessionId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const rows = yield* api.ports.list({ params: { id: input.id as SessionId } })
    if (rows.length === 0) return yield* Console.log("no exposed ports")
    for (const r of rows) yield* Console.log(`${String(r.port).padEnd(6)} ${r.access.padEnd(7)} ${r.url}`)
  }))).pipe(Command.withDescription("List a session's exposed ports"), Command.withAlias("ls"))

export const ports = Command.make("ports").pipe(
  Command.withDescription("Expose a running session's guest ports over HTTP, behind a token or PIN"),
  Command.withSubcommands([expose, list]),
)
