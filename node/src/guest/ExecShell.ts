import { Data, Effect, Option, Stream } from "effect"
import type { ExecOptions, ExecResult, GuestShell } from "./GuestShell.ts"
import { OutputCap } from "./OutputCap.ts"

export class GuestShellError extends Data.TaggedError("GuestShellError")<{ readonly message: string }> {}
export class GuestFileTooLarge extends Data.TaggedError("GuestFileTooLarge")<{
  readonly path: string
  /** The file's size as the guest reported it, or (cut by the node) what arrived before the cut. */
  readonly bytes: number
  readonly maxBytes: number
  /** The guest sent more than it said it would (or than the cap): a hostile guest, not a big file. */
  readonly cutByNode: boolean
}> {}

/** What `run` keeps of each of stdout and stderr; the rest is dropped. */
export const runCapBytes = 1024 * 1024

const textOf = (cap: OutputCap) => {
  cap.end()
  return cap.text
}

export const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** The options' profile and env as a command prefix (throws on an invalid env name). */
export const withOptions = (command: string, options: ExecOptions): string =>
  [
    options.profile === false ? "" : ". /etc/profile >/dev/null 2>&1;",
    ...Object.entries(options.env ?? {}).map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad env name ${k}`)
      return `export ${k}=${shellQuote(v)};`
    }),
    command,
  ].join(" ")

/**
 * Everything of a shell that is built on `exec` (file transfer, clock): shared by the SSH shell
 * and the virtio-serial agent's (GuestAgent.agentShell), so both behave the same.
 */
export const shellFromExec = (exec: GuestShell["exec"]): GuestShell => {
  // What `run` keeps of each stream: its callers read short answers; a chatty command (a
  // snapshot's setup) is cut, never buffered whole.
  const run = (command: string, options?: ExecOptions) =>
    Effect.suspend(() => {
      const out = new OutputCap(runCapBytes)
      const err = new OutputCap(runCapBytes)
      return exec(command, options).pipe(
        Stream.runFold(() => null as number | null, (code, ev) => {
          if (ev._tag === "Exit") return ev.exitCode
          const cap = ev._tag === "Stdout" ? out : err
          cap.push(ev.data)
          return code
        }),
        Effect.map((exitCode): ExecResult => ({ stdout: textOf(out), stderr: textOf(err), exitCode })),
      )
    })

  /**
   * Stdout up to `maxBytes`, counted by the node: the guest's own size check is a courtesy (a
   * root workload can replace `cat`), so the stream is cut once more than that has arrived.
   */
  const collectBytes = (command: string, maxBytes: number) =>
    Effect.suspend(() => {
      const acc = { out: [] as Array<Uint8Array>, bytes: 0, err: new OutputCap(4096), code: null as number | null }
      return exec(command, { profile: false }).pipe(
        Stream.takeUntil((ev) => {
          if (ev._tag === "Exit") acc.code = ev.exitCode
          else if (ev._tag === "Stderr") acc.err.push(ev.data)
          else {
            acc.bytes += ev.data.length
            if (acc.bytes <= maxBytes) acc.out.push(ev.data)
          }
          return acc.bytes > maxBytes
        }),
        Stream.runDrain,
        Effect.as(acc),
      )
    })

  const writeFile: GuestShell["writeFile"] = (path, contents, options = {}) =>
    Effect.gen(function* () {
      const p = shellQuote(path)
      const mode = (options.mode ?? 0o644).toString(8)
      const r = yield* run(
        `mkdir -p "$(dirname ${p})" && cat ${options.append ? ">>" : ">"} ${p} && chmod ${mode} ${p}`,
        { stdin: contents, profile: false },
      )
      if (r.exitCode !== 0) return yield* new GuestShellError({ message: `writing ${path}: ${r.stderr.trim()}` })
    })

  const readFile: GuestShell["readFile"] = (path, maxBytes) =>
    Effect.gen(function* () {
      const p = shellQuote(path)
      const r = yield* collectBytes(
        `[ -f ${p} ] || exit 2; n=$(wc -c < ${p}); [ "$n" -le ${maxBytes} ] || { echo "$n" >&2; exit 3; }; cat ${p}`,
        maxBytes,
      )
      if (r.bytes > maxBytes) {
        return yield* new GuestFileTooLarge({ path, bytes: r.bytes, maxBytes, cutByNode: true })
      }
      if (r.code === 2) return Option.none()
      const err = textOf(r.err).trim()
      if (r.code === 3) return yield* new GuestFileTooLarge({ path, bytes: Number(err), maxBytes, cutByNode: false })
      if (r.code !== 0) return yield* new GuestShellError({ message: `reading ${path}: ${err}` })
      return Option.some(new Uint8Array(Buffer.concat(r.out)))
    })

  const setClock = (epochMs: number = Date.now()) =>
    run(`date -s @${Math.floor(epochMs / 1000)} >/dev/null`, { profile: false }).pipe(
      Effect.flatMap((r) =>
        r.exitCode === 0 ? Effect.void : Effect.fail(new GuestShellError({ message: `date -s: ${r.stderr.trim()}` }))
      ),
    )

  return { exec, run, writeFile, readFile, setClock }
}
