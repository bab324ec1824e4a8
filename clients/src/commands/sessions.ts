import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { NodeId } from "@paws/core/Ids"
import type { Session } from "@paws/core/Session"
import { sessionStatuses } from "@paws/core/SessionStatus"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const sessionId = Argument.String("id").pipe(Argument.withDescription("session id"))
const json = Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false))

export const formatSessionRow = (s: Session): string =>
  [
    s.id,
    s.status.padEnd(9),
    (s.node ?? "-").padEnd(12),
    s.createdAt,
    s.result?.exitCode === undefined || s.result?.exitCode === null ? "-" : `exit ${s.result.exitCode}`,
  ].join("  ")

const list = Command.make("list", {
  status: Flag.Literals("status", sessionStatuses).pipe(
    Flag.withDescription("only sessions in this state"),
    Flag.optional,
  ),
  node: Flag.String("node").pipe(
    Flag.withSchema(NodeId),
    Flag.withDescription("only sessions placed on this node"),
    Flag.optional,
  ),
  limit: Flag.Int("limit").pipe(Flag.withDescription("how many (1-200)"), Flag.withDefault(50)),
  json,
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const page = yield* api.sessions.list({
      query: {
        limit: input.limit,
        ...(Option.isSome(input.status) ? { status: input.status.value } : {}),
        ...(Option.isSome(input.node) ? { node: input.node.value } : {}),
      },
    })
    if (input.json) return yield* Console.log(JSON.stringify(page, null, 2))
    if (page.sessions.length === 0) return yield* Console.log("no sessions")
    for (const s of page.sessions) yield* Console.log(formatSessionRow(s))
  }))).pipe(Command.withDescription("List sessions, newest first"), Command.withAlias("ls"))

const get = Command.make("get", { id: sessionId, json }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const s = yield* api.sessions.get({ params: { id: input.id as Session["id"] } })
    yield* Console.log(input.json ? JSON.stringify(s, null, 2) : formatSessionRow(s))
  }))).pipe(Command.withDescription("Show one session"))

const cancel = Command.make("cancel", { id: sessionId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const s = yield* api.sessions.cancel({ params: { id: input.id as Session["id"] } })
    yield* Console.log(`${s.id} ${s.status}`)
  }))).pipe(Command.withDescription("Cancel a session (a running VM is stopped)"))

export const sessions = Command.make("sessions").pipe(
  Command.withDescription("List, inspect and cancel sessions"),
  Command.withSubcommands([list, get, cancel]),
)
