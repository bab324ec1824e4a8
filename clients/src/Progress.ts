import { Effect, Fiber } from "effect"

/** Where progress goes: stderr in the CLI, a buffer in tests. */
export interface ProgressSink {
  readonly isTTY: boolean
  readonly write: (text: string) => void
}

export const stderrSink: ProgressSink = {
  isTTY: process.stderr.isTTY === true,
  write: (text) => void process.stderr.write(text),
}

/**
 * While a TTY progress line is drawn, anything else written to stdout or stderr (logs) first
 * erases it, so log lines never end up glued to it; the next tick redraws it below them.
 * Returns the progress line's own writer and the undo.
 */
const shareTerminal = (onOther: () => string): { write: (text: string) => void; restore: () => void } => {
  const streams = [process.stdout, process.stderr]
  const originals = streams.map((s) => s.write)
  const own = originals[1]!.bind(process.stderr)
  streams.forEach((stream, i) => {
    const original = originals[i]!
    stream.write = function (this: NodeJS.WriteStream, ...args: Parameters<typeof original>) {
      const erase = onOther()
      if (erase !== "") own(erase)
      return original.apply(this, args)
    } as typeof original
  })
  return { write: (text) => void own(text), restore: () => streams.forEach((s, i) => (s.write = originals[i]!)) }
}

const spinner = ["-", "\\", "|", "/"]

/**
 * Runs `body` with a progress indicator for `label`: the phase `body` last reported and the
 * seconds elapsed. Quiet for the first second (fast steps print nothing). On a TTY one line is
 * redrawn in place (`\r`) and erased at the end; otherwise (CI logs) a plain line is printed
 * on every phase change and every `everyMs` while a phase lasts. The caller prints the result.
 */
export const withProgress = <A, E, R>(
  label: string,
  body: (report: (phase: string) => void) => Effect.Effect<A, E, R>,
  options: { readonly sink?: ProgressSink; readonly everyMs?: number; readonly initialPhase?: string } = {},
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const sink = options.sink ?? stderrSink
    const everyMs = options.everyMs ?? 5_000
    const started = Date.now()
    let phase = options.initialPhase ?? "working"
    let printed: { phase: string; at: number } | undefined
    let drawn = false
    let frame = 0
    const seconds = () => Math.floor((Date.now() - started) / 1000)
    const tick = () => {
      const now = Date.now()
      if (now - started < 1_000) return
      if (sink.isTTY) {
        // One row only: a wrapped line could not be redrawn in place with \r.
        const line = `${spinner[frame++ % spinner.length]} ${label}: ${phase}  ${seconds()} s`
        write(`\r\x1b[2K${line.slice(0, Math.max(20, (process.stderr.columns || 80) - 1))}`)
        drawn = true
      } else if (printed === undefined || printed.phase !== phase || now - printed.at >= everyMs) {
        write(`${label}: ${phase} (${seconds()} s)\n`)
        printed = { phase, at: now }
      }
    }
    const report = (next: string) => {
      phase = next
      tick()
    }
    const ticker = Effect.sync(tick).pipe(Effect.andThen(Effect.sleep(sink.isTTY ? 250 : 1_000)), Effect.forever)
    const shared = sink === stderrSink && sink.isTTY
      ? shareTerminal(() => {
        if (!drawn) return ""
        drawn = false
        return "\r\x1b[2K"
      })
      : undefined
    const write = shared?.write ?? sink.write
    return Effect.gen(function* () {
      const fiber = yield* Effect.forkDetach(ticker)
      return yield* body(report).pipe(
        Effect.ensuring(Effect.andThen(
          Fiber.interrupt(fiber),
          Effect.sync(() => {
            if (drawn) write("\r\x1b[2K")
            shared?.restore()
          }),
        )),
      )
    })
  })
