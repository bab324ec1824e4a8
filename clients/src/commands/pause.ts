import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"
import type { SessionId } from "@paws/core/Ids"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const sessionId = Argument.String("id").pipe(Argument.withDescription("session id"))

export const pause = Command.make("pause", { id: sessionId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const s = yield* api.sessionPause.pause({ params: { id: input.id as SessionId } })
    yield* Console.log(`${s.sessionId} ${s.status}`)
  }))).pipe(
    Command.withDescription(
      "Pause a running live session: its VM (memory and disk) is saved on its node and its slot freed; `paws resume ID` brings it back there",
    ),
  )

export const resume = Command.make("resume", { id: sessionId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const s = yield* api.sessionPause.resume({ params: { id: input.id as SessionId } })
    yield* Console.log(`${s.sessionId} ${s.status}`)
  }))).pipe(
    Command.withDescription(
      "Resume a paused session on the node that saved it (fresh clock, entropy, network and proxy; credentials read again)",
    ),
  )
