import {
  Api,
  CurrentPrincipal,
  type ExecChunk,
  GuestFileNotFound,
  InvalidRequest,
  type LiveSessionError,
  normalGuestPath,
  PayloadTooLarge,
  ServiceUnavailable,
  type SessionId,
  SessionNotFound,
  SessionNotLive,
} from "@paws/core"
import { Effect, Stream } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { NodeRegistry } from "../NodeRegistry.ts"
import { SessionStore } from "../SessionStore.ts"

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

const chunkSse = (c: ExecChunk): string =>
  c._tag === "exit"
    ? sse("exit", { exitCode: c.exitCode, ...(c.signal === undefined ? {} : { signal: c.signal }) })
    : sse(c._tag, { data: Buffer.from(c.data).toString("base64") })

/** What a node's refusal means to the API caller. */
const fromLive = (id: SessionId, path: string) => (e: LiveSessionError) => {
  switch (e.reason) {
    case "outside_roots":
      return new InvalidRequest({
        message: `query.path: ${e.message}`,
        issues: [{ path: "query.path", message: e.message }],
      })
    case "not_found":
      return new GuestFileNotFound({ path, message: e.message })
    case "too_large":
      return new PayloadTooLarge({ message: `${path}: ${e.message}`, maxBytes: 0 })
    case "guest":
      return new ServiceUnavailable({ message: `session ${id}: ${e.message}` })
  }
}

/**
 * Exec and files into a running session: control finds the session's node and calls it over
 * the node link; the node goes through the guest channel it already holds.
 */
export const SessionExecHttp = HttpApiBuilder.group(
  Api,
  "sessionExec",
  Effect.fn(function* (handlers) {
    const store = yield* SessionStore
    const registry = yield* NodeRegistry

    /** The running session's node link, or why there is none. Another project's session is a 404, like an unknown id. */
    const nodeOf = (id: SessionId) =>
      Effect.gen(function* () {
        const { project } = yield* CurrentPrincipal
        const session = yield* store.get(id)
        if (session === undefined || session.project !== project) {
          return yield* new SessionNotFound({ sessionId: id, message: `no session ${id}` })
        }
        if (session.status !== "running" || session.node === null) {
          return yield* new SessionNotLive({
            sessionId: id,
            status: session.status,
            message: `session ${id} is ${session.status}; exec and files need a running session ` +
              "(a `keepAlive` script or an `interactive` workload stays running)",
          })
        }
        const entry = yield* registry.get(session.node)
        if (entry === undefined) {
          return yield* new ServiceUnavailable({ message: `node ${session.node} of session ${id} is not connected` })
        }
        return entry
      })
    const notLive = (id: SessionId) => () =>
      new SessionNotLive({ sessionId: id, status: "running", message: `session ${id} is not live on its node` })
    const nodeDown = (id: SessionId) => () =>
      new ServiceUnavailable({ message: `the node of session ${id} did not answer` })

    return handlers
      .handle("exec", ({ params, payload }) =>
        Effect.gen(function* () {
          const entry = yield* nodeOf(params.id)
          const chunks = entry.client.ExecInSession({
            sessionId: params.id,
            command: payload.command,
            ...(payload.stdin === undefined ? {} : { stdin: payload.stdin }),
          }).pipe(
            Stream.map(chunkSse),
            // Headers are sent by now: a failure is the stream's last event.
            Stream.catchCause((cause) =>
              Stream.succeed(sse("error", { message: `exec ended without an exit: ${String(cause).slice(0, 500)}` }))
            ),
            Stream.encodeText,
          )
          return HttpServerResponse.stream(chunks, {
            contentType: "text/event-stream",
            headers: { "cache-control": "no-cache", "x-accel-buffering": "no" },
          })
        }))
      .handle("readFile", ({ params, query }) =>
        Effect.gen(function* () {
          const entry = yield* nodeOf(params.id)
          const path = normalGuestPath(query.path)
          const read = yield* entry.client.ReadSessionFile({ sessionId: params.id, path }).pipe(
            Effect.catchTags({
              NodeSessionNotFound: () => Effect.fail(notLive(params.id)()),
              LiveSessionError: (e) => Effect.fail(fromLive(params.id, path)(e)),
              RpcClientError: () => Effect.fail(nodeDown(params.id)()),
            }),
          )
          return read.data
        }))
      .handle("writeFile", ({ params, query, payload }) =>
        Effect.gen(function* () {
          const entry = yield* nodeOf(params.id)
          const path = normalGuestPath(query.path)
          yield* entry.client.WriteSessionFile({ sessionId: params.id, path, data: payload }).pipe(
            Effect.catchTags({
              NodeSessionNotFound: () => Effect.fail(notLive(params.id)()),
              LiveSessionError: (e) => Effect.fail(fromLive(params.id, path)(e)),
              RpcClientError: () => Effect.fail(nodeDown(params.id)()),
            }),
          )
        }))
  }),
)
