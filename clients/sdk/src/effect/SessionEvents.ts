import { Data, Effect, Redacted, Schema, Stream } from "effect"
import { SessionEvent } from "@paws/core/SessionEvent"
import { isTerminal } from "@paws/core/SessionStatus"
import { sseFrames } from "../events.ts"

/** Where the control plane is and the key to use (the CLI's `ClientSettings` fits). */
export interface EventSource {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
}

export class EventStreamError extends Data.TaggedError("EventStreamError")<{
  readonly message: string
  /** A dropped connection or a 5xx: worth reconnecting. */
  readonly retryable?: boolean
}> {}

export interface StreamedEvent {
  readonly id: string | undefined
  readonly event: SessionEvent
}

const decodeEvent = Schema.decodeUnknownSync(Schema.fromJsonString(SessionEvent))

/** Splits an SSE byte stream into events (`id:` + `data:` lines, blank line ends one). */
const parseSse = (body: ReadableStream<Uint8Array>): Stream.Stream<StreamedEvent, EventStreamError> =>
  Stream.fromAsyncIterable(
    (async function* () {
      for await (const frame of sseFrames(body)) yield { id: frame.id, event: decodeEvent(frame.data) }
    })(),
    (e) => new EventStreamError({ message: `event stream broke: ${String(e)}`, retryable: true }),
  )

/** One connection to `/v1/sessions/{id}/events`, starting after `lastEventId`. */
const connect = (settings: EventSource, sessionId: string, lastEventId: string | undefined) =>
  Stream.unwrap(Effect.gen(function* () {
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        fetch(`${settings.url}/v1/sessions/${encodeURIComponent(sessionId)}/events`, {
          headers: {
            authorization: `Bearer ${Redacted.value(settings.apiKey)}`,
            accept: "text/event-stream",
            ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}),
          },
          signal,
        }),
      catch: (e) =>
        new EventStreamError({
          message: `cannot reach the control plane at ${settings.url}: ${String(e)}`,
          retryable: true,
        }),
    })
    if (!response.ok || response.body === null) {
      const text = yield* Effect.promise(() => response.text())
      return yield* new EventStreamError({
        message: `events for ${sessionId}: HTTP ${response.status} ${text}`,
        retryable: response.status >= 500,
      })
    }
    return parseSse(response.body)
  }))

/** Reconnects after a dropped stream: 0.25 s, 0.5 s, … up to 4 s apart, about a minute in all. */
const maxReconnects = 18
const reconnectDelayMs = (attempt: number) => Math.min(4000, 250 * 2 ** attempt)

/**
 * Follows a session's events to its end. When the connection drops (or a control restart ends it)
 * before a terminal status, it reconnects with `Last-Event-ID` set to the last event seen, so no
 * event is lost or repeated. Errors that retrying cannot fix (401, 404) end it at once.
 */
export const sessionEvents = (
  settings: EventSource,
  sessionId: string,
  lastEventId?: string,
): Stream.Stream<StreamedEvent, EventStreamError> => {
  const follow = (after: string | undefined, attempt: number): Stream.Stream<StreamedEvent, EventStreamError> =>
    Stream.suspend(() => {
      let last = after
      let ended = false
      let received = false
      let failure: EventStreamError | undefined
      const again = (cause: EventStreamError) =>
        Stream.suspend(() => {
          const next = received ? 0 : attempt + 1
          if (!cause.retryable || next > maxReconnects) return Stream.fail(cause)
          return Stream.fromEffect(Effect.sleep(reconnectDelayMs(next))).pipe(
            Stream.flatMap(() => follow(last, next)),
          )
        })
      return connect(settings, sessionId, after).pipe(
        Stream.tap((e) =>
          Effect.sync(() => {
            received = true
            if (e.id !== undefined) last = e.id
            if (e.event._tag === "status" && isTerminal(e.event.status)) ended = true
          })
        ),
        Stream.catch((e: EventStreamError) => {
          failure = e
          return Stream.empty
        }),
        Stream.concat(Stream.suspend(() =>
          ended ? Stream.empty : again(
            failure ?? new EventStreamError({ message: `event stream for ${sessionId} ended early`, retryable: true }),
          )
        )),
      )
    })
  return follow(lastEventId, 0)
}
