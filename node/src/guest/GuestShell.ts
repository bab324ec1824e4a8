import { type Cause, Data, Effect, Option, Queue, Redacted, Stream } from "effect"
import type { Scope } from "effect"
import ssh2 from "ssh2"
import type { ClientChannel } from "ssh2"
import type { Socket } from "node:net"
import * as os from "node:os"
import { GuestShellError, shellFromExec, shellQuote, withOptions } from "./ExecShell.ts"
import type { GuestFileTooLarge } from "./ExecShell.ts"
import { execInFlightBytes, InFlight } from "./InFlight.ts"
import type { Dialer } from "./NetnsDialer.ts"

export class GuestUnreachable extends Data.TaggedError("GuestUnreachable")<{ readonly message: string }> {}
/** The guest presented a host key other than the image's pinned one: never retried, never accepted. */
export class GuestHostKeyMismatch extends Data.TaggedError("GuestHostKeyMismatch")<{ readonly message: string }> {}
export { GuestFileTooLarge, GuestShellError, runCapBytes, shellFromExec, shellQuote, withOptions } from "./ExecShell.ts"

export type ExecEvent =
  | { readonly _tag: "Stdout"; readonly data: Uint8Array }
  | { readonly _tag: "Stderr"; readonly data: Uint8Array }
  | { readonly _tag: "Exit"; readonly exitCode: number | null; readonly signal: string | undefined }

export interface ExecOptions {
  /** Exported before the command (values are shell-quoted). */
  readonly env?: Readonly<Record<string, string>>
  readonly stdin?: string | Uint8Array
  /** Source /etc/profile first (PATH, profile.d exports such as the CA variables). Default true. */
  readonly profile?: boolean
}

export interface ExecResult {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number | null
}

/** One SSH connection to a guest; every exec is a channel on it. */
export interface GuestShell {
  /** Output chunks as they arrive, then exactly one Exit; interrupting the stream closes the channel. */
  readonly exec: (command: string, options?: ExecOptions) => Stream.Stream<ExecEvent, GuestShellError>
  /** `exec`, collected (UTF-8). */
  readonly run: (command: string, options?: ExecOptions) => Effect.Effect<ExecResult, GuestShellError>
  readonly writeFile: (
    path: string,
    contents: string | Uint8Array,
    options?: { readonly mode?: number; readonly append?: boolean },
  ) => Effect.Effect<void, GuestShellError>
  /** None when the file does not exist. */
  readonly readFile: (
    path: string,
    maxBytes: number,
  ) => Effect.Effect<Option.Option<Uint8Array>, GuestShellError | GuestFileTooLarge>
  /** Sets the guest clock (a restored guest's clock is behind; TLS validity depends on it). */
  readonly setClock: (epochMs?: number) => Effect.Effect<void, GuestShellError>
  /** A login shell on a PTY, closed with the scope (over SSH, or the agent's paws-pty.c). */
  readonly pty?: (size: TerminalSize) => Effect.Effect<GuestPty, GuestShellError, Scope.Scope>
}

export interface TerminalSize {
  readonly cols: number
  readonly rows: number
}

export interface GuestPty {
  /** What the terminal shows, from the moment the PTY opened; ends when the shell exits. */
  readonly output: Stream.Stream<Uint8Array>
  readonly write: (data: Uint8Array) => void
  readonly resize: (size: TerminalSize) => void
  /** Once the output ended: the shell's exit status (128 + signal if killed), if the guest told it. */
  readonly exitCode: () => number | undefined
}

export interface GuestShellOptions {
  readonly dialer: Dialer
  readonly host: string
  readonly port?: number
  readonly username?: string
  /** SSH wire-format blob of the only acceptable host key (GuestImage.hostKeyBlob). */
  readonly hostKeyBlob: Uint8Array
  readonly privateKey: Redacted.Redacted<string>
  /** How long to keep trying while the guest boots. */
  readonly readyTimeoutMs?: number
}

/** Connects, retrying while the guest boots; the connection closes with the scope. */
export const connectGuestShell = (
  options: GuestShellOptions,
): Effect.Effect<GuestShell, GuestUnreachable | GuestHostKeyMismatch, Scope.Scope> =>
  Effect.acquireRelease(
    connectWithRetry(options),
    // end() alone leaves the socket half-open when the guest dies first: destroy it too
    ({ client, sock }) =>
      Effect.sync(() => {
        client.end()
        sock.destroy()
      }),
  ).pipe(Effect.map(({ client }) => makeShell(client)))

const connectWithRetry = (o: GuestShellOptions) =>
  Effect.gen(function* () {
    const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000)
    let last = "no attempt"
    while (Date.now() < deadline) {
      const sock = yield* Effect.result(o.dialer.dial(o.host, o.port ?? 22, 250))
      if (sock._tag === "Failure") {
        last = sock.failure.message
        // refused: the guest is up, dropbear not yet; a timeout already waited
        if (!last.includes("timeout")) yield* Effect.sleep(40)
        continue
      }
      const attempt = yield* Effect.result(handshake(o, sock.success, Math.max(1000, deadline - Date.now())))
      if (attempt._tag === "Success") return attempt.success
      if (attempt.failure._tag === "GuestHostKeyMismatch") return yield* attempt.failure
      last = attempt.failure.message
      yield* Effect.sleep(40)
    }
    return yield* new GuestUnreachable({ message: `guest ${o.host} not reachable over SSH: ${last}` })
  })

const handshake = (o: GuestShellOptions, sock: Socket, timeoutMs: number) =>
  Effect.callback<{ client: ssh2.Client; sock: Socket }, GuestUnreachable | GuestHostKeyMismatch>((resume) => {
    const client = new ssh2.Client()
    let keyRejected = false
    client.once("ready", () => resume(Effect.succeed({ client, sock })))
    client.once("error", (e) => {
      client.end()
      sock.destroy()
      resume(Effect.fail(
        keyRejected
          ? new GuestHostKeyMismatch({ message: `guest ${o.host} presented a host key other than the pinned one` })
          : new GuestUnreachable({ message: e.message }),
      ))
    })
    client.connect({
      sock,
      username: o.username ?? "root",
      privateKey: Redacted.value(o.privateKey),
      readyTimeout: timeoutMs,
      keepaliveInterval: 15_000,
      hostVerifier: (key: Buffer) => {
        keyRejected = !Buffer.from(o.hostKeyBlob).equals(key)
        return !keyRejected
      },
    })
    return Effect.sync(() => {
      client.end()
      sock.destroy()
    })
  })

/**
 * Dropbear ignores "signal" requests and closing a channel leaves the command running; and all
 * commands of one connection share dropbear's process group. So each exec becomes its own
 * session leader (`exec setsid`: same pid, no fork) and records that pid; a stream abandoned
 * before its exit kills the group. Builtins and exec only: forks are slow under TCG.
 */
const execDir = "/run/paws-exec"
const asGroup = (id: string, script: string) =>
  `[ -d ${execDir} ] || mkdir -p ${execDir}; echo $$ > ${execDir}/${id}; exec setsid sh -c ${shellQuote(script)}`
const killGroup = (id: string) =>
  `read -r pg < ${execDir}/${id} && kill -KILL -- "-$pg" 2>/dev/null; rm -f ${execDir}/${id}`

const makeShell = (client: ssh2.Client): GuestShell => {
  const connection = Math.random().toString(36).slice(2, 10)
  let counter = 0
  const open = (id: string, command: string, options: ExecOptions) =>
    new Promise<ClientChannel>((resolve, reject) => {
      client.exec(asGroup(id, withOptions(command, options)), (err, channel) => (err ? reject(err) : resolve(channel)))
    })

  const kill = (id: string) =>
    Effect.callback<void>((resume) => {
      client.exec(killGroup(id), (err, channel) => {
        if (err) return resume(Effect.void)
        channel.resume()
        channel.on("close", () => resume(Effect.void))
        channel.end()
      })
    }).pipe(Effect.timeoutOption(2_000), Effect.asVoid)

  const exec = (command: string, options: ExecOptions = {}): Stream.Stream<ExecEvent, GuestShellError> =>
    Stream.suspend(() => {
      // Paused, the channel stops granting SSH window: dropbear, then the command, block.
      let source: ClientChannel | undefined
      const inFlight = new InFlight(execInFlightBytes, () => {
        source?.pause()
        source?.stderr.pause()
      }, () => {
        source?.resume()
        source?.stderr.resume()
      })
      return Stream.callback<ExecEvent, GuestShellError>((queue) => {
        const id = `${connection}-${counter++}`
        let finished = false
        return Effect.acquireRelease(
          Effect.tryPromise({
            try: () => open(id, command, options),
            catch: (e) => new GuestShellError({ message: `exec failed: ${(e as Error).message}` }),
          }),
          (channel) =>
            Effect.suspend(() => {
              channel.close()
              return finished ? Effect.void : kill(id)
            }),
        ).pipe(Effect.tap((channel) =>
          Effect.sync(() => {
            let code: number | null = null
            let signal: string | undefined
            source = channel
            const offer = (event: Extract<ExecEvent, { data: Uint8Array }>) => {
              inFlight.added(event.data.length)
              Queue.offerUnsafe(queue, event)
            }
            channel.on("data", (d: Buffer) => offer({ _tag: "Stdout", data: new Uint8Array(d) }))
            channel.stderr.on("data", (d: Buffer) => offer({ _tag: "Stderr", data: new Uint8Array(d) }))
            channel.on("exit", (c: number | null, s?: string) => {
              code = c
              signal = s
            })
            channel.on("close", () => {
              finished = true
              Queue.offerUnsafe(queue, { _tag: "Exit", exitCode: code, signal })
              Queue.endUnsafe(queue)
            })
            if (options.stdin !== undefined) channel.end(options.stdin)
            else channel.end()
          })
        ))
      }).pipe(Stream.tap((event) => Effect.sync(() => event._tag !== "Exit" && inFlight.taken(event.data.length))))
    })

  // Listeners go on when the channel opens, so the first prompt is not lost before anyone reads.
  const pty = (size: TerminalSize) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          new Promise<ClientChannel>((resolve, reject) =>
            client.shell(
              { rows: size.rows, cols: size.cols, term: "xterm-256color" },
              (err, channel) => (err ? reject(err) : resolve(channel)),
            )
          ),
        catch: (e) => new GuestShellError({ message: `shell failed: ${(e as Error).message}` }),
      }),
      (channel) => Effect.sync(() => channel.close()),
    ).pipe(Effect.flatMap((channel) =>
      Effect.map(Queue.unbounded<Uint8Array, Cause.Done>(), (queue): GuestPty => {
        let exitCode: number | undefined
        channel.on("exit", (code: number | null, signal?: string) => {
          const n = signal === undefined
            ? undefined
            : os.constants.signals[`SIG${signal}` as keyof typeof os.constants.signals]
          exitCode = code ?? (n === undefined ? undefined : 128 + n)
        })
        channel.on("data", (d: Buffer) => void Queue.offerUnsafe(queue, new Uint8Array(d)))
        channel.stderr.on("data", (d: Buffer) => void Queue.offerUnsafe(queue, new Uint8Array(d)))
        channel.on("close", () => void Queue.endUnsafe(queue))
        return {
          output: Stream.fromQueue(queue),
          write: (data) => void channel.write(Buffer.from(data)),
          resize: (s) => void channel.setWindow(s.rows, s.cols, 0, 0),
          exitCode: () => exitCode,
        }
      })
    ))

  return { ...shellFromExec(exec), pty }
}
