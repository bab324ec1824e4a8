import { Api, CurrentPrincipal, maxPageSize, type SessionId, SessionNotFound } from "@paws/core"
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { EventFeed } from "../EventFeed.ts"
import { queuePosition } from "../QueuePosition.ts"
import { Sessions } from "../Sessions.ts"
import { SessionStore } from "../SessionStore.ts"
import { sessionEventStream } from "./EventStream.ts"
import { answerRateLimited } from "./RateLimitedResponse.ts"

const notFound = (id: string) => new SessionNotFound({ sessionId: id, message: `no session ${id}` })

export const SessionsHttp = HttpApiBuilder.group(
  Api,
  "sessions",
  Effect.fn(function* (handlers) {
    const sessions = yield* Sessions
    const store = yield* SessionStore
    const feed = yield* EventFeed
    const sql = yield* SqlClient.SqlClient
    /** A session of the caller's project; another project's is a 404, exactly like an unknown id. */
    const owned = (id: SessionId) =>
      Effect.gen(function* () {
        const { project } = yield* CurrentPrincipal
        const s = yield* store.get(id)
        return s === undefined || s.project !== project ? yield* notFound(id) : s
      })
    return handlers
      .handle(
        "create",
        ({ headers, payload }) =>
          Effect.flatMap(
            CurrentPrincipal,
            (principal) => answerRateLimited(sessions.create(payload, principal, headers["idempotency-key"])),
          ),
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const { project } = yield* CurrentPrincipal
          const limit = Math.min(query.limit ?? 50, maxPageSize)
          const rows = yield* store.list({
            status: query.status,
            limit: limit + 1,
            cursor: query.cursor,
            project,
            ...(query.daemon === undefined ? {} : { daemon: query.daemon }),
            ...(query.node === undefined ? {} : { node: query.node }),
          })
          const page = rows.slice(0, limit)
          return { sessions: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null }
        }))
      .handle(
        "get",
        ({ params }) =>
          Effect.flatMap(
            owned(params.id),
            (s) =>
              s.status === "pending"
                ? Effect.map(queuePosition(sql, s.id), (queuePosition) => ({ ...s, queuePosition }))
                : Effect.succeed(s),
          ),
      )
      .handle(
        "cancel",
        ({ params }) => Effect.flatMap(CurrentPrincipal, (principal) => sessions.cancel(params.id, principal.project)),
      )
      .handle("events", ({ params, headers }) =>
        Effect.gen(function* () {
          yield* owned(params.id)
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
