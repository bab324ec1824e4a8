import { Api, CurrentPrincipal, maxPageSize, SessionNotFound } from "@paws/core"
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { EventFeed } from "../EventFeed.ts"
import { Sessions } from "../Sessions.ts"
import { SessionStore } from "../SessionStore.ts"
import { sessionEventStream } from "./EventStream.ts"

const notFound = (id: string) => new SessionNotFound({ sessionId: id, message: `no session ${id}` })

export const SessionsHttp = HttpApiBuilder.group(
  Api,
  "sessions",
  Effect.fn(function* (handlers) {
    const sessions = yield* Sessions
    const store = yield* SessionStore
    const feed = yield* EventFeed
    return handlers
      .handle(
        "create",
        ({ headers, payload }) =>
          Effect.flatMap(
            CurrentPrincipal,
            (principal) => sessions.create(payload, principal.keyId, headers["idempotency-key"]),
          ),
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const limit = Math.min(query.limit ?? 50, maxPageSize)
          const rows = yield* store.list({
            status: query.status,
            limit: limit + 1,
            cursor: query.cursor,
            ...(query.daemon === undefined ? {} : { daemon: query.daemon }),
          })
          const page = rows.slice(0, limit)
          return { sessions: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null }
        }))
      .handle(
        "get",
        ({ params }) =>
          Effect.flatMap(
            store.get(params.id),
            (s) => (s === undefined ? Effect.fail(notFound(params.id)) : Effect.succeed(s)),
          ),
      )
      .handle("cancel", ({ params }) => sessions.cancel(params.id))
      .handle("events", ({ params, headers }) =>
        Effect.gen(function* () {
          if ((yield* store.get(params.id)) === undefined) return yield* notFound(params.id)
          return HttpServerResponse.stream(
            sessionEventStream(store, feed, params.id, headers["last-event-id"] ?? "0"),
            {
              contentType: "text/event-stream",
              headers: { "cache-control": "no-cache", "x-accel-buffering": "no" },
            },
          )
        }))
  }),
)
