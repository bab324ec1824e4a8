import { isTerminal, type SessionId } from "@paws/core"
import { Effect, Option, Stream } from "effect"
import type { EventFeed } from "../EventFeed.ts"
import type { SessionStore, StoredEvent } from "../SessionStore.ts"

const pageSize = 500
const heartbeatEvery = 15 // idle waits of one second between `: keep-alive` comments

/**
 * A session's stored events after `afterId`, then live ones (woken by the EventFeed, re-read
 * from the database each second) until the session ends. `undefined` marks an idle second,
 * so a transport can send keep-alives.
 *
 * The stream ends only on an empty read made after the session was seen terminal: the
 * terminal status may commit between an (empty) events read and the session read, so the
 * session read alone would drop it.
 */
export const sessionEventRows = (
  store: SessionStore["Service"],
  feed: EventFeed["Service"],
  id: SessionId,
  afterId: string,
): Stream.Stream<ReadonlyArray<StoredEvent> | undefined> =>
  Stream.paginate({ after: afterId }, (state) =>
    Effect.gen(function* () {
      const page = (rows: ReadonlyArray<StoredEvent>) =>
        [[rows], Option.some({ after: rows[rows.length - 1]!.id })] as const
      const rows = yield* store.events(id, state.after, pageSize)
      if (rows.length > 0) return page(rows)
      const session = yield* store.get(id)
      if (session === undefined) return [[], Option.none()] as const
      if (isTerminal(session.status)) {
        const last = yield* store.events(id, state.after, pageSize)
        return last.length > 0 ? page(last) : [[], Option.none()] as const
      }
      yield* feed.waitFor(id, 1000)
      return [[undefined], Option.some(state)] as const
    }))

/**
 * A session's events as Server-Sent Events. The SSE id is the event's database id, so
 * `Last-Event-ID` resumes exactly.
 */
export const sessionEventStream = (
  store: SessionStore["Service"],
  feed: EventFeed["Service"],
  id: SessionId,
  afterId: string,
): Stream.Stream<Uint8Array> => {
  let idle = 0
  return sessionEventRows(store, feed, id, afterId).pipe(
    Stream.map((rows) => {
      if (rows === undefined) {
        idle = (idle + 1) % heartbeatEvery
        return idle === 0 ? ": keep-alive\n\n" : ""
      }
      idle = 0
      return rows.map((r) => `id: ${r.id}\nevent: ${r.event._tag}\ndata: ${JSON.stringify(r.event)}\n\n`).join("")
    }),
    Stream.filter((text) => text.length > 0),
    Stream.encodeText,
  )
}
