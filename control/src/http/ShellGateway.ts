import { scopeAllows, type SessionId } from "@paws/core"
import { Effect, Schema, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Socket } from "effect/socket"
import { randomUUID } from "node:crypto"
import { requestPrincipal } from "../console/RequestPrincipal.ts"
import { NodeRegistry } from "../NodeRegistry.ts"
import { SessionStore } from "../SessionStore.ts"

const refuse = (status: number, tag: string, message: string) =>
  HttpServerResponse.jsonUnsafe({ _tag: tag, message }, { status })

const size = (value: string | null, fallback: number) => {
  const n = Number(value ?? fallback)
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : fallback
}

/** A text message from the client: a resize (`{"resize":{"cols":…,"rows":…}}`); binary ones are keystrokes. */
const Control = Schema.Struct({
  resize: Schema.Struct({ cols: Schema.Int, rows: Schema.Int }),
})
const decodeControl = Schema.decodeUnknownOption(Schema.fromJsonString(Control))

/**
 * `GET /v1/sessions/{id}/shell` (WebSocket, `Authorization: Bearer` key or console cookie with `sessions:write`,
 * `?cols=&rows=`): a login shell on a PTY in the running session's VM, through its node. Binary
 * messages are keystrokes one way and terminal output the other; a text message resizes.
 */
export const ShellGateway = HttpRouter.add(
  "GET",
  "/v1/sessions/:id/shell",
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const store = yield* SessionStore
    const registry = yield* NodeRegistry
    const principal = yield* requestPrincipal.pipe(Effect.option)
    if (principal._tag === "None") {
      return refuse(401, "Unauthorized", "send Authorization: Bearer <API key>, or sign in to the console")
    }
    if (!scopeAllows(principal.value.scopes, "sessions:write")) {
      return refuse(403, "Forbidden", "a shell needs an API key with scope sessions:write")
    }
    const id = (yield* HttpRouter.params)["id"] ?? ""
    const session = /^[0-9a-f-]{36}$/.test(id) ? yield* store.get(id as SessionId) : undefined
    // Another project's session is as unknown as one that never existed (like the rest of the API).
    if (session === undefined || session.project !== principal.value.project) {
      return refuse(404, "SessionNotFound", `no session ${id}`)
    }
    if (session.status !== "running" || session.node === null) {
      return refuse(409, "SessionNotLive", `session ${id} is ${session.status}; a shell needs a running session`)
    }
    const entry = yield* registry.get(session.node)
    if (entry === undefined) return refuse(503, "ServiceUnavailable", `node ${session.node} is not connected`)
    if ((request.headers["upgrade"] ?? "").toLowerCase() !== "websocket") {
      return refuse(400, "InvalidRequest", "connect with a WebSocket (paws shell ID)")
    }
    const url = new URL(request.url, "http://control")
    const shellId = randomUUID()
    const socket = yield* Effect.orDie(request.upgrade)
    yield* Effect.scoped(Effect.gen(function* () {
      const writer = yield* socket.writer
      const reader = yield* socket.reader
      let exitCode: number | undefined
      const output = entry.client.OpenShell({
        sessionId: session.id,
        shellId,
        size: { cols: size(url.searchParams.get("cols"), 80), rows: size(url.searchParams.get("rows"), 24) },
      }).pipe(Stream.runForEach((chunk) => {
        if (chunk.exitCode !== undefined) exitCode = chunk.exitCode
        return chunk.data.length === 0 ? Effect.void : writer.write(chunk.data)
      }))
      const input = reader.pull.pipe(
        Effect.flatMap((messages) =>
          Effect.forEach(messages, (m) => {
            if (typeof m !== "string") return entry.client.ShellInput({ shellId, data: m })
            const control = decodeControl(m)
            if (control._tag === "None") return Effect.void
            const { cols, rows } = control.value.resize
            return entry.client.ShellInput({
              shellId,
              resize: { cols: size(String(cols), 80), rows: size(String(rows), 24) },
            })
          }, { discard: true })
        ),
        Effect.forever,
      )
      yield* Effect.raceFirst(output, input).pipe(Effect.ignore)
      // the shell's exit status as the close reason, so `paws shell` can exit with it
      const reason = exitCode === undefined ? undefined : `exit ${exitCode}`
      yield* writer.write(new Socket.CloseEvent(1000, reason)).pipe(Effect.ignore)
    }))
    return HttpServerResponse.empty()
  }),
)
