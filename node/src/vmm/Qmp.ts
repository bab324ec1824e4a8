import { Data, Effect } from "effect"
import * as net from "node:net"

export class QmpError extends Data.TaggedError("QmpError")<{ readonly message: string }> {}

/** A QMP session on QEMU's unix socket. Replies come in command order; events are skipped. */
export interface Qmp {
  readonly execute: (command: string, args?: Record<string, unknown>) => Effect.Effect<unknown, QmpError>
  readonly close: Effect.Effect<void>
}

/**
 * Connects once the socket accepts (QEMU creates it shortly after exec), reads the greeting
 * and negotiates capabilities. `gaveUp` ends the wait early, e.g. when QEMU already exited.
 */
export const connectQmp = (
  socketPath: string,
  options: { readonly timeoutMs: number; readonly gaveUp?: () => string | undefined },
): Effect.Effect<Qmp, QmpError> =>
  Effect.gen(function* () {
    const socket = yield* Effect.tryPromise({
      try: (signal) => dial(socketPath, options.timeoutMs, signal, options.gaveUp),
      catch: (e) => new QmpError({ message: e instanceof Error ? e.message : String(e) }),
    })
    const qmp = makeQmp(socket)
    yield* qmp.execute("qmp_capabilities").pipe(Effect.onError(() => qmp.close))
    return qmp
  })

const dial = async (socketPath: string, timeoutMs: number, signal: AbortSignal, gaveUp?: () => string | undefined) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await new Promise<net.Socket | Error>((resolve) => {
      const s = net.createConnection(socketPath)
      s.once("connect", () => resolve(s))
      s.once("error", (e) => resolve(e))
    })
    if (result instanceof net.Socket) return result
    const why = gaveUp?.()
    if (why !== undefined) throw new Error(why)
    if (Date.now() > deadline || signal.aborted) throw new Error(`QMP socket ${socketPath}: ${result.message}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const makeQmp = (socket: net.Socket): Qmp => {
  type Waiter = (reply: { return?: unknown; error?: { desc?: string } } | Error) => void
  const waiters: Array<Waiter> = []
  let greeted = false
  let closed: Error | undefined
  let buffer = ""
  socket.setEncoding("utf8")
  socket.on("data", (chunk: string) => {
    buffer += chunk
    let nl: number
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim()
      buffer = buffer.slice(nl + 1)
      if (line === "") continue
      const msg = JSON.parse(line) as Record<string, unknown>
      if (!greeted && "QMP" in msg) {
        greeted = true
        continue
      }
      if ("event" in msg) continue
      waiters.shift()?.(msg)
    }
  })
  const fail = (e: Error) => {
    closed = e
    for (const w of waiters.splice(0)) w(e)
  }
  socket.on("error", fail)
  socket.on("close", () => fail(new Error("QMP connection closed")))

  const execute = (command: string, args?: Record<string, unknown>) =>
    Effect.callback<unknown, QmpError>((resume) => {
      if (closed) return resume(Effect.fail(new QmpError({ message: `${command}: ${closed.message}` })))
      waiters.push((reply) => {
        if (reply instanceof Error) resume(Effect.fail(new QmpError({ message: `${command}: ${reply.message}` })))
        else if (reply.error) resume(Effect.fail(new QmpError({ message: `${command}: ${reply.error.desc}` })))
        else resume(Effect.succeed(reply.return))
      })
      socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`)
    })
  return { execute, close: Effect.sync(() => socket.destroy()) }
}
