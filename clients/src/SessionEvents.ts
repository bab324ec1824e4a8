import { Data, Effect, Redacted, Schema, Stream } from "effect"
import { SessionEvent } from "@paws/core/SessionEvent"
import type { ClientSettings } from "./ClientConfig.ts"

export class EventStreamError extends Data.TaggedError("EventStreamError")<{ readonly message: string }> {}

export interface StreamedEvent {
  readonly id: string | undefined
  readonly event: SessionEvent
}

const decodeEvent = Schema.decodeUnknownSync(Schema.fromJsonString(SessionEvent))

/** Splits an SSE byte stream into events (`id:` + `data:` lines, blank line ends one). */
const parseSse = (body: ReadableStream<Uint8Array>): Stream.Stream<StreamedEvent, EventStreamError> =>
  Stream.fromAsyncIterable(
    (async function* () {
      const decoder = new TextDecoder()
      let buffer = ""
      let id: string | undefined
      let data: Array<string> = []
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let nl: number
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, "")
          buffer = buffer.slice(nl + 1)
          if (line === "") {
            if (data.length > 0) yield { id, event: decodeEvent(data.join("\n")) }
            data = []
          } else if (line.startsWith("data:")) data.push(line.slice(5).trimStart())
          else if (line.startsWith("id:")) id = line.slice(3).trim()
        }
      }
    })(),
    (e) => new EventStreamError({ message: `event stream broke: ${String(e)}` }),
  )

/** Follows `/v1/sessions/{id}/events`; resumes with Last-Event-ID when the connection drops. */
export const sessionEvents = (settings: ClientSettings, sessionId: string, lastEventId?: string) =>
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
        new EventStreamError({ message: `cannot reach the control plane at ${settings.url}: ${String(e)}` }),
    })
    if (!response.ok || response.body === null) {
      const text = yield* Effect.promise(() => response.text())
      return yield* new EventStreamError({ message: `events for ${sessionId}: HTTP ${response.status} ${text}` })
    }
    return parseSse(response.body)
  }))
