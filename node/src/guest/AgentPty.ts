import { type Cause, Effect, Queue, Stream } from "effect"
import type { Scope } from "effect"
import type { GuestPty, TerminalSize } from "./GuestShell.ts"
import { InFlight } from "./InFlight.ts"

/** What the node holds of the guest's shells' undelivered output, all shells together. */
export const ptyInFlightBytes = 1024 * 1024
/** Keystrokes go to the agent in pieces of at most this (its own read buffer is 4 KiB). */
const inputPieceBytes = 4096

interface OpenPty {
  readonly queue: Queue.Queue<Uint8Array, Cause.Done>
  /** Bytes (with InFlight's overhead) queued but not yet taken: given back when it closes. */
  queued: number
  exitCode: number | undefined
}

/**
 * The node side of paws-pty.c's shells on one agent connection: `p <id> <n>` frames and `q <id>
 * …` lines arrive interleaved with every other answer and are routed here by id; keystrokes,
 * resizes and hangups are lines the agent never answers, so they go out at any time, even while
 * an exec holds the request turn. A consumer that stops reading holds the socket (like an exec's).
 */
export const makeAgentPtys = (
  send: (parts: ReadonlyArray<string | Uint8Array>) => boolean,
  hold: () => void,
  unhold: () => void,
) => {
  const open = new Map<number, OpenPty>()
  const inFlight = new InFlight(ptyInFlightBytes, hold, unhold)
  let nextId = 1

  const output = (id: number, data: Buffer) => {
    const pty = open.get(id)
    if (pty === undefined) return // closed here already: the rest is dropped
    inFlight.added(data.length)
    pty.queued += data.length
    Queue.offerUnsafe(pty.queue, new Uint8Array(data))
  }

  /** `q <id> <code>`, `q <id> s<signal>` (as 128 + signal, like a shell's `$?`) or `q <id> fail …`. */
  const ended = (id: number, how: string) => {
    const pty = open.get(id)
    if (pty === undefined) return
    const code = /^(s?)(\d+)$/.exec(how)
    if (code !== null) pty.exitCode = Number(code[2]) + (code[1] === "s" ? 128 : 0)
    else {Queue.offerUnsafe(
        pty.queue,
        new TextEncoder().encode(`\r\npaws: the guest could not open a shell: ${how.replace(/^fail /, "")}\r\n`),
      )}
    Queue.endUnsafe(pty.queue)
  }

  const release = (id: number) => {
    const pty = open.get(id)
    if (pty === undefined) return
    open.delete(id)
    inFlight.taken(pty.queued)
  }

  const pty = (size: TerminalSize): Effect.Effect<GuestPty, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.gen(function* () {
        const id = nextId++
        const queue = yield* Queue.unbounded<Uint8Array, Cause.Done>()
        const state: OpenPty = { queue, queued: 0, exitCode: undefined }
        open.set(id, state)
        if (!send([`pty ${id} ${size.rows} ${size.cols}\n`])) ended(id, "fail the agent connection is closed")
        return { id, state }
      }),
      ({ id, state }) =>
        Effect.sync(() => {
          if (state.exitCode === undefined) send([`pclose ${id}\n`])
          release(id)
        }),
    ).pipe(Effect.map(({ id, state }): GuestPty => ({
      output: Stream.fromQueue(state.queue).pipe(
        Stream.tap((data) =>
          Effect.sync(() => {
            state.queued -= data.length
            if (open.has(id)) inFlight.taken(data.length)
          })
        ),
      ),
      write: (data) => {
        for (let at = 0; at < data.length; at += inputPieceBytes) {
          const piece = data.subarray(at, at + inputPieceBytes)
          send([`pin ${id} ${piece.length}\n`, piece])
        }
      },
      resize: (s) => void send([`pwin ${id} ${s.rows} ${s.cols}\n`]),
      exitCode: () => state.exitCode,
    })))

  /** The connection is gone: every shell's output ends (without an exit code). */
  const lost = () => {
    for (const [id, pty] of open) {
      Queue.endUnsafe(pty.queue)
      release(id)
    }
  }

  return { pty, output, ended, lost }
}
