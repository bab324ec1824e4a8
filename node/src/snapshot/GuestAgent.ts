import { Cause, Data, Effect, Queue, Semaphore, Stream } from "effect"
import type { Scope } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { GuestShellError, shellFromExec, withOptions } from "../guest/GuestShell.ts"
import type { ExecEvent, GuestShell } from "../guest/GuestShell.ts"
import { runHostCommand } from "../image/HostCommand.ts"
import { controlPortName } from "../vmm/MachineArgs.ts"

export class GuestAgentError extends Data.TaggedError("GuestAgentError")<{ readonly message: string }> {}

/** Guest paths of the agent; /run is tmpfs, so they live in the snapshot's RAM, not in the image. */
export const agentPath = "/run/paws/agent"
/** The static agent binary (paws-agent.c): the port loop, `restore` and `exec`. */
export const agentBinaryPath = "/run/paws/paws-agent"
/** SnapshotBuilder installs the binary under this name. */
export const restoreHelperPath = agentBinaryPath

/** The guest side's start: find the port by name, then become the static agent (paws-agent.c). */
export const agentScript = `#!/bin/sh
dev=
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = ${controlPortName} ] && dev=/dev/\${p##*/}; done
[ -n "$dev" ] || { echo "paws agent: no ${controlPortName} port" >/dev/ttyS0; exit 1; }
exec ${agentBinaryPath} "$dev"
`

const sources = ["paws-agent.c", "paws-restore.c", "paws-sys.h"].map((f) =>
  fileURLToPath(new URL(`./${f}`, import.meta.url))
)

/** Compiles the static, libc-free guest agent once per source version (needs gcc on the node). */
export const buildAgentBinary = (cacheDir: string): Effect.Effect<string, GuestAgentError> =>
  Effect.gen(function* () {
    const hash = createHash("sha256")
    for (const s of sources) hash.update(yield* Effect.promise(() => fs.readFile(s)))
    const out = path.join(cacheDir, `paws-agent-${hash.digest("hex").slice(0, 16)}`)
    const exists = yield* Effect.promise(() => fs.access(out).then(() => true, () => false))
    if (exists) return out
    yield* Effect.promise(() => fs.mkdir(cacheDir, { recursive: true }))
    const tmp = `${out}.${randomBytes(4).toString("hex")}`
    yield* runHostCommand("gcc", [
      ...["-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-no-pie", "-s"],
      ...["-o", tmp, sources[0]!, sources[1]!],
    ]).pipe(Effect.mapError((e) => new GuestAgentError({ message: `gcc paws-agent.c failed: ${e.stderr}` })))
    yield* Effect.promise(() => fs.rename(tmp, out))
    return out
  })
/** SnapshotBuilder's name for it. */
export const buildRestoreHelper = buildAgentBinary

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
}

/** Paths the agent's line protocol can carry (no whitespace); others go through an exec. */
const plainPath = (p: string) => p.startsWith("/") && !/\s/.test(p)

/** A GuestShell over the agent: the same exec options, files and clock as over SSH. */
export const agentShell = (agent: GuestAgent): GuestShell => {
  const shell = shellFromExec((command, options = {}) =>
    Stream.suspend(() =>
      agent.exec(withOptions(command, options), options.stdin === undefined ? {} : { stdin: options.stdin })
    ).pipe(Stream.mapError((e) => new GuestShellError({ message: e.message })))
  )
  return {
    ...shell,
    writeFile: (path, contents, options = {}) =>
      plainPath(path)
        ? agent.writeFile(path, contents, options).pipe(
          Effect.mapError((e) => new GuestShellError({ message: `writing ${path}: ${e.message}` })),
        )
        : shell.writeFile(path, contents, options),
  }
}

/** Runs a script through the agent; output is stdout and stderr together, trailing newlines cut. */
export const agentRun = (agent: GuestAgent, script: string, timeoutMs: number) =>
  agent.exec(script).pipe(
    Stream.runFold(() => ({ out: [] as Array<Uint8Array>, code: null as number | null }), (acc, ev) => {
      if (ev._tag === "Exit") acc.code = ev.exitCode
      else acc.out.push(ev.data)
      return acc
    }),
    Effect.map((acc) => ({
      exitCode: acc.code,
      output: Buffer.concat(acc.out).toString("utf8").replace(/\n+$/, ""),
    })),
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () => Effect.fail(new GuestAgentError({ message: `agent: no answer in ${timeoutMs} ms` })),
    }),
  )

const signalNames = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name.replace(/^SIG/, "")]))

/** paws-agent.c sends output in chunks of at most 64 KiB and short lines. */
const maxFrameBytes = 65_536
const maxLineBytes = 65_536

/** One message from the guest: a line, or a stdout (`o`) / stderr (`e`) frame with its bytes. */
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
    let frame: { tag: string; bytes: number } | undefined
    socket.on("data", (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      for (;;) {
        if (frame !== undefined) {
          if (buffer.length < frame.bytes) break
          const data = buffer.subarray(0, frame.bytes)
          buffer = buffer.subarray(frame.bytes)
          const head = frame.tag
          frame = undefined
          handler?.({ head, data })
          continue
        }
        const nl = buffer.indexOf(10)
        if (nl < 0) {
          if (buffer.length > maxLineBytes) return breach(`a line over ${maxLineBytes} bytes`)
          break
        }
        const head = buffer.subarray(0, nl).toString("latin1")
        buffer = buffer.subarray(nl + 1)
        const m = /^([oe]) (\d+)$/.exec(head)
        if (m && Number(m[2]) > maxFrameBytes) return breach(`a frame of ${m[2]} bytes`)
        if (m) frame = { tag: m[1]!, bytes: Number(m[2]) }
        else handler?.({ head })
      }
    })
    // The guest is not trusted (a root workload can replace the agent on the port): nothing it
    // sends may make the node buffer more than one frame or line.
    const breach = (what: string) => {
      lost(new Error(`agent protocol violation: ${what}`))
      socket.destroy()
    }
    const lost = (e: Error) => {
      closed ??= e
      handler?.(e)
    }
    socket.on("error", lost)
    socket.on("close", () => lost(new Error("agent connection closed")))
    const failure = (e: Error) => new GuestAgentError({ message: e.message })

    /** Sends a request (a line, maybe with bytes after it) and waits for the one-line answer. */
    const ask = (parts: ReadonlyArray<string | Uint8Array>, timeoutMs: number) =>
      Effect.callback<string, GuestAgentError>((resume) => {
        if (closed) return resume(Effect.fail(failure(closed)))
        handler = (m) => {
          handler = undefined
          resume(m instanceof Error ? Effect.fail(failure(m)) : Effect.succeed(m.head))
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
    const request = (line: string, timeoutMs: number) => ask([`${line}\n`], timeoutMs)
    const okOrFail = (what: string) => (reply: string) =>
      reply === "ok" ? Effect.void : Effect.fail(new GuestAgentError({ message: `agent ${what}: ${reply}` }))

    const writeFile: GuestAgent["writeFile"] = (filePath, contents, options = {}) =>
      Effect.suspend(() => {
        if (!plainPath(filePath)) {
          return Effect.fail(
            new GuestAgentError({ message: `agent write: unsupported path ${JSON.stringify(filePath)}` }),
          )
        }
        const data = Buffer.from(contents)
        const mode = (options.mode ?? 0o644).toString(8)
        return ask([`write ${filePath} ${mode} ${options.append ? "a" : "w"} ${data.length}\n`, data], 30_000)
      }).pipe(Effect.flatMap(okOrFail(`write ${filePath}`)))

    const mkdir: GuestAgent["mkdir"] = (dirPath) =>
      plainPath(dirPath)
        ? request(`mkdir ${dirPath}`, 30_000).pipe(Effect.flatMap(okOrFail(`mkdir ${dirPath}`)))
        : Effect.fail(new GuestAgentError({ message: `agent mkdir: unsupported path ${JSON.stringify(dirPath)}` }))

    const exec: GuestAgent["exec"] = (command, options = {}) =>
      Stream.callback<ExecEvent, GuestAgentError>((queue) =>
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
                  const data = new Uint8Array(m.data)
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
              finished || closed ? Effect.void : Effect.callback<void>((resume) => {
                onFinished = () => resume(Effect.void)
                socket.write("kill\n")
              }).pipe(Effect.timeoutOption(2_000), Effect.asVoid),
          )
        })
      )

    return { request, exec, writeFile, mkdir }
  })
