import { Data, Effect, Redacted } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { SessionId } from "@paws/core/Ids"
import { readFileSync, writeFileSync } from "node:fs"
import { ApiClient, Settings } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

class CliInputError extends Data.TaggedError("CliInputError")<{ readonly message: string }> {}

/** `event:` + `data:` frames of a Server-Sent Events body. */
async function* namedFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder()
  let buffer = ""
  let event = "message"
  const data: Array<string> = []
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "")
      buffer = buffer.slice(nl + 1)
      if (line === "") {
        if (data.length > 0) yield { event, data: data.join("\n") }
        event = "message"
        data.length = 0
      } else if (line.startsWith("event:")) event = line.slice(6).trim()
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""))
    }
  }
}

export const exec = Command.make("exec", {
  id: Argument.String("id").pipe(Argument.withDescription("session id (a running session)")),
  stdin: Flag.Boolean("stdin").pipe(
    Flag.withAlias("i"),
    Flag.withDescription("send this process's stdin to the command (up to 1 MiB)"),
    Flag.withDefault(false),
  ),
  command: Argument.String("command").pipe(Argument.withDescription("argv to run, after --"), Argument.variadic()),
}, (input) =>
  withApi(Effect.gen(function* () {
    const settings = yield* Settings
    if (input.command.length === 0) {
      return yield* new CliInputError({ message: "give the command after --, e.g. paws exec ID -- ls /work" })
    }
    const stdin = input.stdin ? readFileSync(0, "utf8") : undefined
    const response = yield* Effect.tryPromise({
      try: () =>
        fetch(`${settings.url}/v1/sessions/${input.id}/exec`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${Redacted.value(settings.apiKey)}`,
            "content-type": "application/json",
          },
          body: JSON.stringify({ command: input.command, ...(stdin === undefined ? {} : { stdin }) }),
        }),
      catch: (e) => new CliInputError({ message: `cannot reach the control plane: ${(e as Error).message}` }),
    })
    if (!response.ok || response.body === null) {
      const text = yield* Effect.promise(() => response.text())
      const body = (() => {
        try {
          return JSON.parse(text) as { _tag?: string; message?: string }
        } catch {
          return { message: text }
        }
      })()
      return yield* new CliInputError({ message: `${body._tag ?? response.status}: ${body.message ?? ""}` })
    }
    const exitCode = yield* Effect.promise(async () => {
      for await (const frame of namedFrames(response.body!)) {
        const data = JSON.parse(frame.data) as {
          data?: string
          exitCode?: number | null
          signal?: string
          message?: string
        }
        if (frame.event === "stdout" || frame.event === "stderr") {
          ;(frame.event === "stdout" ? process.stdout : process.stderr).write(Buffer.from(data.data ?? "", "base64"))
        } else if (frame.event === "exit") {
          if (data.signal !== undefined) process.stderr.write(`paws: killed by signal ${data.signal}\n`)
          return data.exitCode ?? 128
        } else if (frame.event === "error") {
          process.stderr.write(`paws: ${data.message}\n`)
          return 1
        }
      }
      process.stderr.write("paws: the exec stream ended without an exit code\n")
      return 1
    })
    process.exitCode = exitCode
  }))).pipe(Command.withDescription("Run a command in a running session's VM: paws exec ID -- CMD [ARGS…]"))

/** `ID:PATH` → the session and guest path; anything else is a local path. */
const remote = (spec: string): { readonly id: string; readonly path: string } | undefined => {
  const m = /^([0-9a-f-]{36}):(\/.*)$/.exec(spec)
  return m === null ? undefined : { id: m[1]!, path: m[2]! }
}

export const cp = Command.make("cp", {
  from: Argument.String("from").pipe(Argument.withDescription("LOCAL or ID:PATH")),
  to: Argument.String("to").pipe(Argument.withDescription("ID:PATH or LOCAL")),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const [src, dst] = [remote(input.from), remote(input.to)]
    if ((src === undefined) === (dst === undefined)) {
      return yield* new CliInputError({
        message: "copy between this machine and a session: paws cp LOCAL ID:/work/file or paws cp ID:/work/file LOCAL",
      })
    }
    if (dst !== undefined) {
      const data = yield* Effect.try({
        try: () => new Uint8Array(readFileSync(input.from)),
        catch: () => new CliInputError({ message: `cannot read ${input.from}` }),
      })
      yield* api.sessionExec.writeFile({
        params: { id: dst.id as SessionId },
        query: { path: dst.path },
        payload: data,
      })
      return
    }
    const data = yield* api.sessionExec.readFile({ params: { id: src!.id as SessionId }, query: { path: src!.path } })
    yield* Effect.try({
      try: () => writeFileSync(input.to, data),
      catch: () => new CliInputError({ message: `cannot write ${input.to}` }),
    })
  }))).pipe(
    Command.withDescription("Copy a file into or out of a running session (paths under /work, /tmp, /state, /output)"),
  )
