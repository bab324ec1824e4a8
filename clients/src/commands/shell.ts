import { Data, Effect, Redacted } from "effect"
import { Argument, Command } from "effect/cli"
import { shellPath } from "@paws/core/LiveSession"
import WebSocket from "ws"
import { Settings } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

class ShellError extends Data.TaggedError("ShellError")<{ readonly message: string }> {}

const terminalSize = () => ({ cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 })

/**
 * `paws shell ID`: this terminal, raw, wired to a login shell on a PTY in the session's VM. Keys
 * go as they are typed (Ctrl-C reaches the guest's foreground job); a resize of this terminal
 * resizes the guest's. Ends when the guest shell exits (with its exit status) or the connection drops (exit 1,
 * with a message: a dropped shell is not a successful one).
 */
export const shell = Command.make("shell", {
  id: Argument.String("id").pipe(Argument.withDescription("session id (a running session)")),
}, (input) =>
  withApi(Effect.gen(function* () {
    const settings = yield* Settings
    const { cols, rows } = terminalSize()
    const url = `${settings.url.replace(/^http/, "ws")}${shellPath(input.id)}?cols=${cols}&rows=${rows}`
    yield* Effect.callback<void, ShellError>((resume) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${Redacted.value(settings.apiKey)}` } })
      const stdin = process.stdin
      const onKeys = (d: Buffer) => ws.send(d)
      const onResize = () => ws.send(JSON.stringify({ resize: terminalSize() }))
      const restore = () => {
        stdin.off("data", onKeys)
        process.stdout.off("resize", onResize)
        if (stdin.isTTY) stdin.setRawMode(false)
        stdin.pause()
      }
      ws.on("unexpected-response", (_req, res) => {
        let body = ""
        res.on("data", (d: Buffer) => (body += d))
        res.on("end", () => {
          const parsed = (() => {
            try {
              return JSON.parse(body) as { _tag?: string; message?: string }
            } catch {
              return { message: body }
            }
          })()
          resume(Effect.fail(new ShellError({ message: `${parsed._tag ?? res.statusCode}: ${parsed.message ?? ""}` })))
        })
      })
      ws.on("open", () => {
        if (stdin.isTTY) stdin.setRawMode(true)
        stdin.on("data", onKeys)
        stdin.resume()
        process.stdout.on("resize", onResize)
      })
      ws.on("message", (data: Buffer) => process.stdout.write(data))
      ws.on("close", (code, reason) => {
        restore()
        const status = /^exit (\d+)$/.exec(reason.toString())
        if (status !== null) {
          process.exitCode = Number(status[1])
          return resume(Effect.void)
        }
        // No exit status: the shell did not end by itself (session cancelled or ended, node or control gone).
        resume(Effect.fail(
          new ShellError({
            message: `the shell closed without an exit status (WebSocket ${code}${
              reason.length > 0 ? ` ${reason}` : ""
            }): the session may have been cancelled or ended; see \`paws sessions get ${input.id}\``,
          }),
        ))
      })
      ws.on("error", (e) => {
        restore()
        resume(Effect.fail(new ShellError({ message: `shell connection: ${e.message}` })))
      })
      return Effect.sync(() => {
        restore()
        ws.terminate()
      })
    })
  }))).pipe(Command.withDescription("An interactive shell in a running session's VM (PTY; resize; Ctrl-C)"))
