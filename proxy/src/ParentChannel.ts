import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { ProxyConfig } from "@paws/core/ProxyConfig"
import type { ProxyMessage } from "@paws/core/ProxyConfig"

/**
 * The pipe to the node that spawned this proxy: the config arrives as the first stdin line,
 * NDJSON messages leave on stdout, and stdin reaching EOF (parent closed it, or died) means stop.
 */
const maxConfigBytes = 4 * 1024 * 1024

export class ConfigUnreadable extends Error {
  constructor(message: string) {
    super(message)
    this.name = "ConfigUnreadable"
  }
}

/** Reads the first line (or, when stdin ends first, everything) from stdin. */
export const readConfigLine = (input: NodeJS.ReadableStream): Effect.Effect<string, ConfigUnreadable> =>
  Effect.callback<string, ConfigUnreadable>((resume) => {
    let buffered = ""
    const done = (effect: Effect.Effect<string, ConfigUnreadable>) => {
      input.off("data", onData)
      input.off("end", onEnd)
      resume(effect)
    }
    const onData = (chunk: string | Buffer) => {
      buffered += chunk.toString()
      const newline = buffered.indexOf("\n")
      if (newline !== -1) return done(Effect.succeed(buffered.slice(0, newline)))
      if (buffered.length > maxConfigBytes) done(Effect.fail(new ConfigUnreadable("config line exceeds 4 MiB")))
    }
    const onEnd = () =>
      done(
        buffered.trim() === ""
          ? Effect.fail(new ConfigUnreadable("stdin closed before a config line arrived"))
          : Effect.succeed(buffered),
      )
    input.on("data", onData)
    input.on("end", onEnd)
  })

/** Strings under `credentials` in a raw config: redacted from any decode error we report. */
const credentialStrings = (raw: unknown): Array<string> => {
  const out: Array<string> = []
  const walk = (v: unknown) => {
    if (typeof v === "string") out.push(v)
    else if (v !== null && typeof v === "object") { for (const x of Object.values(v)) walk(x) }
  }
  if (raw !== null && typeof raw === "object") walk((raw as Record<string, unknown>)["credentials"])
  return out.filter((s) => s.length > 0)
}

export const decodeConfig = (line: string): Effect.Effect<ProxyConfig, ConfigUnreadable> =>
  Effect.suspend(() => {
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch {
      return Effect.fail(new ConfigUnreadable("config line is not JSON"))
    }
    return Schema.decodeUnknownEffect(ProxyConfig)(raw).pipe(
      Effect.mapError((error) => {
        let message = `invalid config: ${String(error)}`
        for (const secret of credentialStrings(raw)) message = message.split(secret).join("[redacted]")
        return new ConfigUnreadable(message)
      }),
    )
  })

/**
 * Completes when stdin ends (the parent closed it or died). Call it first thing: the end may
 * come while the proxy is still starting, and a listener added later would never hear it.
 */
export const watchStdinEnd = (input: NodeJS.ReadableStream): Effect.Effect<void> => {
  const ended = new Promise<void>((resolve) => {
    input.once("end", resolve)
    input.once("close", resolve)
  })
  return Effect.promise(() => ended)
}

/**
 * After the config line, keep reading so that EOF is seen; each further line goes to `onLine`
 * (decisions on held requests). A line longer than 64 KiB is no decision: dropped.
 */
export const drain = (input: NodeJS.ReadableStream, onLine: (line: string) => void = () => {}): void => {
  let buffered = ""
  input.on("data", (chunk: string | Buffer) => {
    buffered += chunk.toString()
    let newline = buffered.indexOf("\n")
    while (newline !== -1) {
      onLine(buffered.slice(0, newline))
      buffered = buffered.slice(newline + 1)
      newline = buffered.indexOf("\n")
    }
    if (buffered.length > 65_536) buffered = ""
  })
  input.resume()
}

export const writeLine = (line: string): void => {
  process.stdout.write(line)
}

export const message = (m: ProxyMessage): string => JSON.stringify(m) + "\n"
