import { isTerminal, type SessionId } from "@paws/core"
import { Effect, Option, Stream } from "effect"
import type { EventFeed } from "../EventFeed.ts"
import type { SessionStore } from "../SessionStore.ts"

const pageSize = 500
const heartbeatEvery = 15 // idle waits of one second between `: keep-alive` comments

/**
 * A session's events as Server-Sent Events: what is stored after `afterId`, then live events
 * (woken by the EventFeed, re-read from the database each second) until the session ends.
 * The SSE id is the event's database id, so `Last-Event-ID` resumes exactly.
 */
export const sessionEventStream = (
  store: SessionStore["Service"],
  feed: EventFeed["Service"],
  id: SessionId,
  afterId: string,
): Stream.Stream<Uint8Array> =>
  Stream.paginate({ after: afterId, idle: 0 }, (state) =>
    Effect.gen(function* () {
      const rows = yield* store.events(id, state.after, pageSize)
      if (rows.length > 0) {
        const frames = rows.map((r) => `id: ${r.id}\nevent: ${r.event._tag}\ndata: ${JSON.stringify(r.event)}\n\n`)
        const ended = rows.some((r) => r.event._tag === "status" && isTerminal(r.event.status))
        const next = { after: rows[rows.length - 1]!.id, idle: 0 }
        return [frames, ended && rows.length < pageSize ? Option.none() : Option.some(next)] as const
      }
      const session = yield* store.get(id)
      if (session === undefined || isTerminal(session.status)) return [[], Option.none()] as const
      yield* feed.waitFor(id, 1000)
      const idle = state.idle + 1
      return [
        idle >= heartbeatEvery ? [": keep-alive\n\n"] : [],
        Option.some({ ...state, idle: idle % heartbeatEvery }),
      ] as const
    })).pipe(Stream.encodeText)
