import { RpcSession, type RpcTransport } from "capnweb"
import { livePath } from "@paws/core"
import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { Socket } from "effect/socket"
import { ApiKeys } from "./ApiKeys.ts"
import { EventFeed } from "./EventFeed.ts"
import { LiveGate } from "./LiveApi.ts"
import { Quotas } from "./Quotas.ts"
import { Sessions } from "./Sessions.ts"
import { SessionStore } from "./SessionStore.ts"

/** Bridges an Effect socket to Cap'n Web's string transport, for the lifetime of the connection. */
const serveCapnweb = (socket: Socket.Socket, main: LiveGate) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const writer = yield* socket.writer
    const reader = yield* socket.reader
    const inbox: Array<string> = []
    let waiting: { resolve: (s: string) => void; reject: (e: Error) => void } | undefined
    const connection: { closed?: Error } = {}
    const deliver = (message: string) => {
      if (waiting !== undefined) {
        const w = waiting
        waiting = undefined
        w.resolve(message)
      } else inbox.push(message)
    }
    const transport: RpcTransport = {
      send: (message) => Effect.runPromiseWith(context)(writer.write(message)),
      receive: () =>
        inbox.length > 0
          ? Promise.resolve(inbox.shift()!)
          : connection.closed !== undefined
          ? Promise.reject(connection.closed)
          : new Promise((resolve, reject) => (waiting = { resolve, reject })),
    }
    new RpcSession(transport, main)
    const decoder = new TextDecoder()
    yield* reader.pull.pipe(
      Effect.flatMap((batch) =>
        Effect.sync(() => batch.forEach((b) => deliver(typeof b === "string" ? b : decoder.decode(b))))
      ),
      Effect.forever,
      Effect.catch(() => Effect.void),
    )
    connection.closed = new Error("connection closed")
    waiting?.reject(connection.closed)
  }).pipe(Effect.scoped)

/**
 * `GET /v1/rpc`: the live API for TypeScript clients over Cap'n Web (WebSocket). The only call
 * an unauthenticated connection can make is `authenticate(apiKey)`, which returns the
 * session capability (create, get, cancel, subscribe), checked against the key's scopes.
 * It is an in-band login so that browsers, which cannot set headers on a WebSocket, can use it.
 */
export const LiveGateway = HttpRouter.add(
  "GET",
  livePath,
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if ((request.headers["upgrade"] ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.jsonUnsafe({
        _tag: "InvalidRequest",
        message: "/v1/rpc is a Cap'n Web endpoint: connect with a WebSocket (newWebSocketRpcSession)",
        issues: [],
      }, { status: 400 })
    }
    const live = {
      keys: yield* ApiKeys,
      sessions: yield* Sessions,
      store: yield* SessionStore,
      feed: yield* EventFeed,
      quotas: yield* Quotas,
      context: yield* Effect.context<never>(),
    }
    const socket = yield* Effect.orDie(request.upgrade)
    yield* serveCapnweb(socket, new LiveGate(live))
    return HttpServerResponse.empty()
  }),
)
