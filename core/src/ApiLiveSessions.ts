import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { InvalidRequest, PayloadTooLarge, ServiceUnavailable, SessionNotFound } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { ExecRequest, guestFileRoots, GuestPath, liveFileMaxBytes } from "./LiveSession.ts"

/** The session exists but its VM is not up (pending, starting, or finished). */
export class SessionNotLive extends Schema.TaggedError<SessionNotLive>()("SessionNotLive", {
  sessionId: Schema.String,
  status: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

export class GuestFileNotFound extends Schema.TaggedError<GuestFileNotFound>()("GuestFileNotFound", {
  path: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

const roots = guestFileRoots.join(", ")

/** Exec and files into a running session's VM, routed by control to the session's node. */
export class SessionExecApi extends HttpApiGroup.make("sessionExec")
  .add(
    HttpApiEndpoint.post("exec", "/:id/exec", {
      params: { id: SessionId },
      payload: ExecRequest,
      success: Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/event-stream" })),
      error: [SessionNotFound, SessionNotLive, InvalidRequest, ServiceUnavailable],
    }).pipe(scoped(
      "sessions:write",
      "Run a command in a running session",
      "Runs `command` (an argv) in the session's VM as root, in /root, with the session's env, `stdin` on its " +
        'stdin. Server-Sent Events: `stdout` and `stderr` (data = `{"data": base64}`) as the output ' +
        'arrives, then one `exit` (data = `{"exitCode": n|null, "signal"?: name}`); an `error` event ' +
        '(data = `{"message"}`) if the VM went away. Closing the stream kills the command. The session ' +
        "must be running: a `keepAlive` script or an `interactive` workload keeps it so.",
    )),
    HttpApiEndpoint.get("readFile", "/:id/files", {
      params: { id: SessionId },
      query: { path: GuestPath },
      success: Schema.Uint8Array.pipe(HttpApiSchema.asUint8Array()),
      error: [SessionNotFound, SessionNotLive, GuestFileNotFound, InvalidRequest, PayloadTooLarge, ServiceUnavailable],
    }).pipe(scoped(
      "sessions:write",
      "Read a file from a running session",
      `The file's bytes. \`path\` must be under ${roots} (no \`..\`, and no symlink that leads outside them); ` +
        `files over ${liveFileMaxBytes} bytes are a 413.`,
    )),
    HttpApiEndpoint.put("writeFile", "/:id/files", {
      params: { id: SessionId },
      query: { path: GuestPath },
      payload: Schema.Uint8Array.pipe(HttpApiSchema.asUint8Array()),
      success: HttpApiSchema.NoContent,
      error: [SessionNotFound, SessionNotLive, GuestFileNotFound, InvalidRequest, PayloadTooLarge, ServiceUnavailable],
    }).pipe(scoped(
      "sessions:write",
      "Write a file into a running session",
      `The request body becomes the file (created or replaced, parent directories made, mode 0644). ` +
        `\`path\` must be under ${roots} (no \`..\`, and no symlink that leads outside them); ` +
        `bodies over ${liveFileMaxBytes} bytes (or PAWS_MAX_BODY_BYTES) are a 413. ` +
        "Send it as `Content-Type: application/octet-stream`.",
    )),
  )
  .prefix("/v1/sessions")
  .annotateMerge(OpenApi.annotations({ description: "Live sessions: commands and files into a running VM." })) {}
