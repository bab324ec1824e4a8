import { Cause, Data, Effect, Queue, Semaphore, Stream } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import * as os from "node:os"
import { makeAgentPtys } from "./AgentPty.ts"
import type { ExecEvent, GuestPty, TerminalSize } from "./GuestShell.ts"
import { execInFlightBytes, InFlight } from "./InFlight.ts"

export class GuestAgentError extends Data.TaggedError("GuestAgentError")<{ readonly message: string }> {}

/** `exec`'s command is one execve argument of the guest's `sh -c` (MAX_ARG_STRLEN, with its NUL). */
export const agentMaxCommandBytes = 131_072

/** The host side of the control port. One request at a time; each waits for the one before. */
export interface GuestAgent {
  /** One line out, one line back (`ping`, `restore`). */
  readonly request: (line: string, timeoutMs: number) => Effect.Effect<string, GuestAgentError>
  /**
   * `/bin/sh -c command` in the guest as root, as an SSH exec would run it (no profile sourced).
   * Stdout and stderr chunks as they arrive, byte-exact, then exactly one Exit (a signal's name
   * like ssh2's, e.g. "KILL"). Interrupting the stream kills the command's process group.
   */
  readonly exec: (
    command: string,
    options?: { readonly stdin?: string | Uint8Array },
  ) => Stream.Stream<ExecEvent, GuestAgentError>
  /** Writes (or appends to) a file, creating its parent dirs, by the agent itself: no guest process. */
  readonly writeFile: (
    path: string,
    contents: string | Uint8Array,
    options?: { readonly mode?: number; readonly append?: boolean },
  ) => Effect.Effect<void, GuestAgentError>
  /** `mkdir -p`, by the agent itself. */
  readonly mkdir: (path: string) => Effect.Effect<void, GuestAgentError>
  /** A login shell on a PTY in the guest (paws-pty.c), beside any request; hung up with the scope. */
  readonly pty: (size: TerminalSize) => Effect.Effect<GuestPty, never, Scope.Scope>
  /**
   * Several mkdirs and writes sent in one go and answered in order: one round trip instead of
   * one each. Succeeds once every answer is `ok`; else fails naming the first that was not.
   */
  readonly batch: (ops: ReadonlyArray<AgentFileOp>) => Effect.Effect<void, GuestAgentError>
}

/** One step of a `batch`: the agent's own `mkdir` or `write`. */
export type AgentFileOp =
  | { readonly _tag: "mkdir"; readonly path: string }
  | {
    readonly _tag: "write"
    readonly path: string
    readonly contents: string | Uint8Array
    readonly mode?: number
    readonly append?: boolean
  }

/** Paths the agent's line protocol can carry (no whitespace); others go through an exec. */
export const plainPath = (p: string) => p.startsWith("/") && !/\s/.test(p)

const signalNames = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name.replace(/^SIG/, "")]))

/** paws-agent.c sends output in chunks of at most 64 KiB (never empty) and short lines. */
const maxFrameBytes = 65_536
const maxLineBytes = 65_536
/**
 * Messages (lines and frames) the node handles per second from one guest. The real agent sends
 * one frame per pipe read, far fewer under TCG; a flood of tiny forged frames waits instead.
 */
export const maxMessagesPerSecond = 20_000
const rateWaitMs = 50

/** One message from the guest: a line, or a stdout (`o`) / stderr (`e`) frame with its bytes (shells' `p` frames go to AgentPty). */
interface Message {
  readonly head: string
  readonly data?: Buffer
}

/** Connects to QEMU's chardev socket for the port; closed with the scope. */
export const connectGuestAgent = (socketPath: string): Effect.Effect<GuestAgent, GuestAgentError, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.createConnection(socketPath)
            s.once("connect", () => resolve(s))
            s.once("error", reject)
          }),
        catch: (e) => new GuestAgentError({ message: `agent socket ${socketPath}: ${(e as Error).message}` }),
      }),
      (s) => Effect.sync(() => s.destroy()),
    )
    const turn = yield* Semaphore.make(1)
    // Whoever waits for the guest's next messages; without one they are stale (e.g. a ping's
    // answer from before the snapshot) and dropped.
    let handler: ((m: Message | Error) => void) | undefined
    let closed: Error | undefined
    let buffer: Buffer = Buffer.alloc(0)
    let frame: { tag: string; bytes: number; pty?: number } | undefined
    // The guest is not trusted (a root workload can replace the agent on the port): nothing it
    // sends may make the node buffer more than one frame or line plus one exec's bounded
    // in-flight output, nor handle more than maxMessagesPerSecond. Past either bound the socket
    // is paused (the guest's writes block), never read into memory.
    const holds = new Set<"rate" | "exec" | "pty">()
    const hold = (why: "rate" | "exec" | "pty") => {
      if (holds.size === 0) socket.pause()
      holds.add(why)
    }
    const unhold = (why: "rate" | "exec" | "pty") => {
      if (!holds.delete(why) || holds.size > 0 || closed) return
      socket.resume()
      parse()
    }
    let tokens = maxMessagesPerSecond
    let refilled = Date.now()
    /** One message's worth of the rate budget; without one, reading waits for the refill. */
    const spend = () => {
      if (tokens < 1) {
        const now = Date.now()
        tokens = Math.min(maxMessagesPerSecond, tokens + ((now - refilled) * maxMessagesPerSecond) / 1000)
        refilled = now
      }
      if (tokens >= 1) {
        tokens -= 1
        return true
      }
      if (!holds.has("rate")) {
        hold("rate")
        setTimeout(() => unhold("rate"), rateWaitMs).unref()
      }
      return false
    }
    // Consecutive frames of one stream read in one go are handed on as one message: a flood of
    // tiny frames costs the node a header parse each, not a queued event each.
    let run: { tag: string; parts: Array<Buffer> } | undefined
    const flush = () => {
      if (run === undefined) return
      const { tag, parts } = run
      run = undefined
      handler?.({ head: tag, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) })
    }
    const parse = () => {
      while (!holds.has("rate") && !closed) {
        if (frame !== undefined) {
          if (buffer.length < frame.bytes || !spend()) break
          const data = buffer.subarray(0, frame.bytes)
          buffer = buffer.subarray(frame.bytes)
          if (frame.pty !== undefined) {
            ptys.output(frame.pty, data)
            frame = undefined
            continue
          }
          if (run !== undefined && run.tag !== frame.tag) flush()
          if (run === undefined) run = { tag: frame.tag, parts: [data] }
          else run.parts.push(data)
          frame = undefined
          continue
        }
        const nl = buffer.indexOf(10)
        if (nl < 0) {
          if (buffer.length > maxLineBytes) return breach(`a line over ${maxLineBytes} bytes`)
          break
        }
        const head = buffer.subarray(0, nl).toString("latin1")
        const m = /^([oe]|p (\d{1,9})) (\d+)$/.exec(head)
        if (m && (Number(m[3]) > maxFrameBytes || Number(m[3]) === 0)) return breach(`a frame of ${m[3]} bytes`)
        if (!m && !spend()) break
        buffer = buffer.subarray(nl + 1)
        const ended = m ? null : /^q (\d{1,9}) (.*)$/.exec(head)
        if (m) {
          frame = { tag: m[1]!.slice(0, 1), bytes: Number(m[3]), ...(m[2] === undefined ? {} : { pty: Number(m[2]) }) }
        } else if (ended) ptys.ended(Number(ended[1]), ended[2]!)
        else {
          flush()
          handler?.({ head })
        }
      }
      flush()
    }
    const ptys = makeAgentPtys(
      (parts) => {
        if (closed) return false
        for (const p of parts) socket.write(p)
        return true
      },
      () => hold("pty"),
      () => unhold("pty"),
    )
    socket.on("data", (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      parse()
    })
    const breach = (what: string) => {
      lost(new Error(`agent protocol violation: ${what}`))
      socket.destroy()
    }
    const lost = (e: Error) => {
      closed ??= e
      handler?.(e)
      ptys.lost()
    }
    socket.on("error", lost)
    socket.on("close", () => lost(new Error("agent connection closed")))
    const failure = (e: Error) => new GuestAgentError({ message: e.message })

    /**
     * Sends requests (lines, maybe with bytes after them) in one go and waits for `answers`
     * one-line answers: the agent handles its requests one after another, in order.
     */
    const askMany = (parts: ReadonlyArray<string | Uint8Array>, answers: number, timeoutMs: number) =>
      Effect.callback<ReadonlyArray<string>, GuestAgentError>((resume) => {
        if (closed) return resume(Effect.fail(failure(closed)))
        const heads: Array<string> = []
        handler = (m) => {
          if (!(m instanceof Error)) heads.push(m.head)
          if (m instanceof Error || heads.length === answers) handler = undefined
          if (m instanceof Error) resume(Effect.fail(failure(m)))
          else if (heads.length === answers) resume(Effect.succeed(heads))
        }
        for (const p of parts) socket.write(p)
        return Effect.sync(() => void (handler = undefined))
      }).pipe(
        Effect.timeoutOrElse({
          duration: timeoutMs,
          orElse: () => Effect.fail(new GuestAgentError({ message: `agent: no answer in ${timeoutMs} ms` })),
        }),
        turn.withPermits(1),
      )
    const ask = (parts: ReadonlyArray<string | Uint8Array>, timeoutMs: number) =>
      askMany(parts, 1, timeoutMs).pipe(Effect.map((heads) => heads[0]!))
    const request = (line: string, timeoutMs: number) => ask([`${line}\n`], timeoutMs)
    const okOrFail = (what: string) => (reply: string) =>
      reply === "ok" ? Effect.void : Effect.fail(new GuestAgentError({ message: `agent ${what}: ${reply}` }))

    /** A batch step as its request bytes; undefined for a path the line protocol cannot carry. */
    const requestOf = (op: AgentFileOp): ReadonlyArray<string | Uint8Array> | undefined => {
      if (!plainPath(op.path)) return undefined
      if (op._tag === "mkdir") return [`mkdir ${op.path}\n`]
      const data = Buffer.from(op.contents)
      const mode = (op.mode ?? 0o644).toString(8)
      return [`write ${op.path} ${mode} ${op.append ? "a" : "w"} ${data.length}\n`, data]
    }
    const batch: GuestAgent["batch"] = (ops) =>
      Effect.gen(function* () {
        const parts: Array<string | Uint8Array> = []
        for (const op of ops) {
          const req = requestOf(op)
          if (req === undefined) {
            return yield* new GuestAgentError({
              message: `agent ${op._tag}: unsupported path ${JSON.stringify(op.path)}`,
            })
          }
          parts.push(...req)
        }
        if (ops.length === 0) return
        const heads = yield* askMany(parts, ops.length, 30_000)
        for (const [i, head] of heads.entries()) yield* okOrFail(`${ops[i]!._tag} ${ops[i]!.path}`)(head)
      })

    const writeFile: GuestAgent["writeFile"] = (path, contents, options = {}) =>
      batch([{ _tag: "write", path, contents, ...options }])

    const mkdir: GuestAgent["mkdir"] = (path) => batch([{ _tag: "mkdir", path }])

    const exec: GuestAgent["exec"] = (command, options = {}) =>
      Stream.suspend(() => {
        // Output not yet taken by the stream's consumer holds the socket past the bound.
        const inFlight = new InFlight(execInFlightBytes, () => hold("exec"), () => unhold("exec"))
        // Set once the consumer is gone: later frames are only drained, never queued.
        let abandoned = false
        return Stream.callback<ExecEvent, GuestAgentError>((queue) =>
          Effect.gen(function* () {
            const cmd = Buffer.from(command)
            const stdin = options.stdin === undefined ? Buffer.alloc(0) : Buffer.from(options.stdin)
            if (cmd.length >= agentMaxCommandBytes) {
              return yield* new GuestAgentError({ message: `agent exec: command of ${cmd.length} bytes is too long` })
            }
            yield* Effect.acquireRelease(turn.take(1), () => turn.release(1))
            let finished = false
            let onFinished: (() => void) | undefined
            const finish = (event: ExecEvent | GuestAgentError) => {
              finished = true
              handler = undefined
              if (event instanceof GuestAgentError) Queue.failCauseUnsafe(queue, Cause.fail(event))
              else {
                Queue.offerUnsafe(queue, event)
                Queue.endUnsafe(queue)
              }
              onFinished?.()
            }
            yield* Effect.acquireRelease(
              Effect.sync(() => {
                if (closed) return finish(failure(closed))
                handler = (m) => {
                  if (m instanceof Error) return finish(failure(m))
                  if (m.data !== undefined) {
                    if (abandoned) return
                    const data = new Uint8Array(m.data)
                    inFlight.added(data.length)
                    return void Queue.offerUnsafe(queue, { _tag: m.head === "o" ? "Stdout" : "Stderr", data })
                  }
                  const x = /^x (s?)(\d+)$/.exec(m.head)
                  if (x === null) return finish(new GuestAgentError({ message: `agent exec: ${m.head}` }))
                  const n = Number(x[2])
                  finish(
                    x[1] === "s"
                      ? { _tag: "Exit", exitCode: null, signal: signalNames.get(n) ?? String(n) }
                      : { _tag: "Exit", exitCode: n, signal: undefined },
                  )
                }
                socket.write(`exec ${cmd.length} ${stdin.length}\n`)
                socket.write(cmd)
                if (stdin.length > 0) socket.write(stdin)
              }),
              // Abandoned before its exit: kill its process group and let the agent finish the exec
              // (its remaining frames drained here) before the next request goes out.
              () =>
                Effect.suspend(() => {
                  abandoned = true
                  unhold("exec")
                  return finished || closed ? Effect.void : Effect.callback<void>((resume) => {
                    onFinished = () => resume(Effect.void)
                    socket.write("kill\n")
                  }).pipe(Effect.timeoutOption(2_000), Effect.asVoid)
                }),
            )
          })
        ).pipe(Stream.tap((event) => Effect.sync(() => event._tag !== "Exit" && inFlight.taken(event.data.length))))
      })

    return { request, exec, writeFile, mkdir, batch, pty: ptys.pty }
  })
