import { Effect, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Session } from "@paws/core/Session"
import { isTerminal } from "@paws/core/SessionStatus"
import { ApiClient, Settings } from "../ApiClient.ts"
import { sessionEvents } from "../SessionEvents.ts"
import { withApi } from "./shared.ts"

export const logs = Command.make("logs", {
  id: Argument.String("id").pipe(Argument.withDescription("session id")),
  follow: Flag.Boolean("follow").pipe(
    Flag.withAlias("f"),
    Flag.withDescription("keep streaming until the session ends"),
    Flag.withDefault(false),
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const settings = yield* Settings
    const session = yield* api.sessions.get({ params: { id: input.id as Session["id"] } })
    const done = isTerminal(session.status)
    if (done && session.result !== null && !input.follow) {
      // A finished session: its stored result holds the (capped) output.
      process.stdout.write(session.result.stdout)
      process.stderr.write(session.result.stderr)
      return
    }
    const stream = sessionEvents(settings, input.id)
    // Without -f, print what is there and stop once the stream goes quiet.
    const bounded = input.follow || done ? stream : stream.pipe(Stream.timeout("500 millis"))
    yield* Stream.runForEach(bounded, ({ event }) =>
      Effect.sync(() => {
        if (event._tag === "output") (event.stream === "stdout" ? process.stdout : process.stderr).write(event.data)
      }))
  }))).pipe(Command.withDescription("Print a session's output (-f to follow it live)"))
