import { Effect, Option, Stream } from "effect"
import {
  type ExecChunk,
  guestFileRoots,
  guestPathProblem,
  liveFileMaxBytes,
  LiveSessionError,
  normalGuestPath,
} from "@paws/core"
import { shellQuote } from "../guest/ExecShell.ts"
import type { GuestShell } from "../guest/GuestShell.ts"
import { envPath } from "../guest/GuestSetup.ts"

const guestError = (message: string) => new LiveSessionError({ reason: "guest", message })

/**
 * Exec and files into a running session's guest, over the shell the session already holds
 * (the agent's virtio-serial channel, or SSH for a cold boot).
 */

/** The argv run as a workload would be: the session's env sourced, in /root. */
export const execInGuest = (
  shell: GuestShell,
  command: ReadonlyArray<string>,
  stdin: string | undefined,
): Stream.Stream<ExecChunk, LiveSessionError> =>
  shell.exec(
    `. ${envPath} 2>/dev/null; cd /root 2>/dev/null; exec ${command.map(shellQuote).join(" ")}`,
    stdin === undefined ? {} : { stdin },
  ).pipe(
    Stream.map((e): ExecChunk =>
      e._tag === "Exit"
        ? { _tag: "exit", exitCode: e.exitCode, ...(e.signal === undefined ? {} : { signal: e.signal }) }
        : { _tag: e._tag === "Stdout" ? "stdout" : "stderr", data: e.data }
    ),
    Stream.mapError((e) => guestError(e.message)),
  )

const outsideRoots = 4

/**
 * The path as the guest resolves it: its deepest existing ancestor through `readlink -f`, the
 * rest (which does not exist yet, so holds no links) appended. Refused when that leaves the
 * roots, so a symlink in /work cannot lead a read or write to /etc. This is the API's policy,
 * not a wall against the guest: the guest is root in its own VM and may change anything anyway.
 */
const resolveCommand = (path: string) =>
  [
    `p=${shellQuote(path)}`,
    `d="$p"`,
    `while [ ! -e "$d" ] && [ ! -L "$d" ]; do d=$(dirname "$d"); done`,
    `r=$(readlink -f "$d") || exit 5`,
    // from "/" the rest is the whole path; else what follows the ancestor, after its resolved form
    `case "$d" in /) full="$p" ;; *) full="\${r%/}\${p#"$d"}" ;; esac`,
    `case "$full" in ${
      guestFileRoots.map((root) => `${root}/?*`).join("|")
    }) printf '%s' "$full" ;; *) exit ${outsideRoots} ;; esac`,
  ].join("\n")

const resolveOnce = (shell: GuestShell, path: string) =>
  shell.run(resolveCommand(normalGuestPath(path)), { profile: false }).pipe(
    Effect.mapError((e) => guestError(e.message)),
  )

const resolve = (shell: GuestShell, path: string) =>
  Effect.gen(function* () {
    const problem = guestPathProblem(path)
    if (problem !== undefined) {
      return yield* new LiveSessionError({ reason: "outside_roots", message: `path ${problem}` })
    }
    const clear = (x: { exitCode: number | null; stdout: string }) =>
      x.exitCode === outsideRoots || ((x.exitCode === 0 || x.exitCode === null) && x.stdout.startsWith("/"))
    let r = yield* resolveOnce(shell, path)
    // The script prints only on success, so a printed path stands even when the exit status got lost (null). An
    // unclear answer (seen rarely, under heavy load, over SSH) is logged and the idempotent check asked once more.
    if (!clear(r)) {
      yield* Effect.logWarning("guest path resolution unclear; asking again").pipe(
        Effect.annotateLogs({
          path,
          exitCode: r.exitCode,
          stdout: r.stdout.slice(0, 200),
          stderr: r.stderr.slice(0, 200),
        }),
      )
      r = yield* resolveOnce(shell, path)
    }
    if (r.exitCode === outsideRoots) {
      return yield* new LiveSessionError({
        reason: "outside_roots",
        message: `path ${path} leads outside ${guestFileRoots.join(", ")} through a symlink`,
      })
    }
    if ((r.exitCode !== 0 && r.exitCode !== null) || !r.stdout.startsWith("/")) {
      return yield* guestError(
        `resolving ${path}: exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.slice(0, 200))}, ` +
          `stderr ${JSON.stringify(r.stderr.trim().slice(0, 500))}`,
      )
    }
    return r.stdout
  })

export const readGuestFile = (shell: GuestShell, path: string) =>
  Effect.gen(function* () {
    const full = yield* resolve(shell, path)
    const data = yield* shell.readFile(full, liveFileMaxBytes).pipe(
      Effect.catchTag("GuestFileTooLarge", (e) =>
        Effect.fail(
          new LiveSessionError({ reason: "too_large", message: `${path} is over ${e.maxBytes} bytes` }),
        )),
      Effect.catchTag("GuestShellError", (e) => Effect.fail(guestError(e.message))),
    )
    if (Option.isNone(data)) {
      return yield* new LiveSessionError({ reason: "not_found", message: `no file ${path} in the session's VM` })
    }
    return data.value
  })

export const writeGuestFile = (shell: GuestShell, path: string, data: Uint8Array) =>
  Effect.gen(function* () {
    if (data.length > liveFileMaxBytes) {
      return yield* new LiveSessionError({ reason: "too_large", message: `over ${liveFileMaxBytes} bytes` })
    }
    const full = yield* resolve(shell, path)
    yield* shell.writeFile(full, data, { mode: 0o644 }).pipe(Effect.mapError((e) => guestError(e.message)))
  })
