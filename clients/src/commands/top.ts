import { Effect, Schedule } from "effect"
import { Command, Flag } from "effect/cli"
import type { Session } from "@paws/core"
import { ApiClient, Settings } from "../ApiClient.ts"
import { renderTop } from "../TopView.ts"
import { withApi } from "./shared.ts"

const clearScreen = "\x1b[H\x1b[2J"

/** Resolves when the user presses q or Ctrl-C (raw mode when stdin is a terminal). */
const waitForQuit = Effect.callback<void>((resume) => {
  const stdin = process.stdin
  if (!stdin.isTTY) return
  stdin.setRawMode(true)
  stdin.resume()
  // Restore the terminal on quit and on interrupt alike; a paused stdin lets the process exit.
  const restore = () => {
    stdin.off("data", onData)
    stdin.setRawMode(false)
    stdin.pause()
  }
  const onData = (b: Buffer) => {
    if (b.includes(0x71) || b.includes(0x03)) {
      restore()
      resume(Effect.void)
    }
  }
  stdin.on("data", onData)
  return Effect.sync(restore)
})

export const top = Command.make("top", {
  interval: Flag.Int("interval").pipe(Flag.withDescription("refresh every N ms"), Flag.withDefault(1000)),
  once: Flag.Boolean("once").pipe(Flag.withDescription("print one frame and exit"), Flag.withDefault(false)),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const settings = yield* Settings
    const frame = Effect.gen(function* () {
      const nodes = yield* api.nodes.list()
      const active: Array<Session> = []
      for (const status of ["running", "starting", "pending"] as const) {
        const page = yield* api.sessions.list({ query: { status, limit: 50 } })
        active.push(...page.sessions)
      }
      const text = renderTop({ url: settings.url, nodes, sessions: active }, Date.now())
      process.stdout.write(input.once ? `${text}\n` : `${clearScreen}${text}\n`)
    })
    if (input.once) return yield* frame
    yield* Effect.raceFirst(
      frame.pipe(Effect.repeat(Schedule.spaced(`${input.interval} millis`))),
      waitForQuit,
    )
  }))).pipe(Command.withDescription("Live view of nodes and running sessions, refreshed in place"))
