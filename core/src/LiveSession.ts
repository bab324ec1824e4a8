import { Schema } from "effect"
import { Rpc } from "effect/rpc"
import { NodeSessionNotFound } from "./Errors.ts"
import { SessionId } from "./Ids.ts"

/**
 * Exec and files into a running session's VM: the shapes shared by the HTTP API, the
 * control→node RPCs and the node.
 */

/** Guest directories that `files` may read and write under (the session's work, scratch, state, output). */
export const guestFileRoots = ["/work", "/tmp", "/state", "/output"] as const

/** The most one `files` request moves either way. */
export const liveFileMaxBytes = 8 * 1024 * 1024
/** The most stdin one exec request carries. */
export const execStdinMaxBytes = 1024 * 1024

/**
 * Why `path` is not a file path under the allowed roots, or undefined when it is. Lexical only:
 * the node also refuses a path whose symlinks resolve outside the roots (in the guest).
 */
export const guestPathProblem = (path: string): string | undefined => {
  if (!path.startsWith("/")) return "must be an absolute path"
  if (path.length > 4096) return "must be at most 4096 characters"
  if (/[\0\n\r]/.test(path)) return "must not contain NUL or line breaks"
  const parts = path.split("/").filter((p) => p !== "")
  if (parts.some((p) => p === ".." || p === ".")) return "must not contain `.` or `..` segments"
  const normal = "/" + parts.join("/")
  if (!guestFileRoots.some((root) => normal.startsWith(root + "/"))) {
    return `must be a file under one of ${guestFileRoots.join(", ")}`
  }
  return undefined
}

/** A guest file path under the allowed roots. */
export const GuestPath = Schema.String.pipe(
  Schema.check(Schema.makeFilter((p: string) => guestPathProblem(p) ?? true)),
).annotate({ identifier: "GuestPath" })

/** `path` without empty segments (`/work//a/` → `/work/a`). */
export const normalGuestPath = (path: string): string => "/" + path.split("/").filter((s) => s !== "").join("/")

export const ExecRequest = Schema.Struct({
  /** The argv to run in the guest (as root, in /root, with the session's env). `["sh", "-c", "…"]` for shell syntax. */
  command: Schema.Array(Schema.String.pipe(Schema.check(Schema.isMaxLength(65_536)))).pipe(
    Schema.check(Schema.isMinLength(1), Schema.isMaxLength(1024)),
  ),
  /** UTF-8 text on the command's stdin (closed after it); none: stdin is empty. */
  stdin: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isMaxLength(execStdinMaxBytes)))),
}).annotate({ identifier: "ExecRequest" })
export type ExecRequest = typeof ExecRequest.Type

/** What an exec streams: output chunks (bytes, base64 on the RPC wire), then exactly one exit. */
export const ExecChunk = Schema.Union([
  Schema.TaggedStruct("stdout", { data: Schema.Uint8ArrayFromBase64 }),
  Schema.TaggedStruct("stderr", { data: Schema.Uint8ArrayFromBase64 }),
  Schema.TaggedStruct("exit", { exitCode: Schema.NullOr(Schema.Int), signal: Schema.optionalKey(Schema.String) }),
]).annotate({ identifier: "ExecChunk" })
export type ExecChunk = typeof ExecChunk.Type

/** The session's VM cannot take the request: not live on the node, refused path, too large, guest error. */
export class LiveSessionError extends Schema.TaggedError<LiveSessionError>()("LiveSessionError", {
  reason: Schema.Literals(["outside_roots", "not_found", "too_large", "guest"]),
  message: Schema.String,
}) {}

export const ExecInSession = Rpc.make("ExecInSession", {
  payload: { sessionId: SessionId, command: ExecRequest.fields.command, stdin: ExecRequest.fields.stdin },
  success: ExecChunk,
  error: Schema.Union([NodeSessionNotFound, LiveSessionError]),
  stream: true,
})

export const ReadSessionFile = Rpc.make("ReadSessionFile", {
  payload: { sessionId: SessionId, path: Schema.String },
  success: Schema.Struct({ data: Schema.Uint8ArrayFromBase64 }),
  error: Schema.Union([NodeSessionNotFound, LiveSessionError]),
})

export const WriteSessionFile = Rpc.make("WriteSessionFile", {
  payload: { sessionId: SessionId, path: Schema.String, data: Schema.Uint8ArrayFromBase64 },
  error: Schema.Union([NodeSessionNotFound, LiveSessionError]),
})

/** `GET` (WebSocket) with a `sessions:write` key: an interactive shell in the session's VM (`paws shell`). */
export const shellPath = (sessionId: string) => `/v1/sessions/${sessionId}/shell`

const TerminalSize = Schema.Struct({
  cols: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))),
  rows: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))),
})

/** A login shell on a PTY in the guest: its output streams back until it exits; interrupting closes it. */
export const OpenShell = Rpc.make("OpenShell", {
  payload: {
    sessionId: SessionId,
    shellId: Schema.String.pipe(Schema.check(Schema.isBetweenLength(8, 64))),
    size: TerminalSize,
  },
  // the last element may carry the shell's exit status (128 + signal if killed)
  success: Schema.Struct({ data: Schema.Uint8ArrayFromBase64, exitCode: Schema.optionalKey(Schema.Int) }),
  error: Schema.Union([NodeSessionNotFound, LiveSessionError]),
  stream: true,
})

/** Keystrokes for an open shell, or its new terminal size. */
export const ShellInput = Rpc.make("ShellInput", {
  payload: {
    shellId: Schema.String,
    data: Schema.optionalKey(Schema.Uint8ArrayFromBase64),
    resize: Schema.optionalKey(TerminalSize),
  },
  error: LiveSessionError,
})
