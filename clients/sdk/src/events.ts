import { apiError, PawsApiError } from "./errors.ts"
import type { components } from "./generated/schema.ts"

type Schemas = components["schemas"]

/** One audited request or DNS answer of the session's proxy. */
export interface AuditRecord {
  readonly time: string
  readonly decision: string
  readonly host: string
  readonly method?: string
  readonly path?: string
  readonly status?: number
  readonly injected?: ReadonlyArray<string>
  readonly reason?: string
  readonly count?: number
  readonly [field: string]: unknown
}

/** The `data` of one event on `GET /v1/sessions/{id}/events` (the SSE body is not described by the spec). */
export type SessionEvent =
  | {
    readonly _tag: "status"
    readonly status: Schemas["SessionStatus"]
    readonly at: string
    readonly reason?: string
  }
  | { readonly _tag: "output"; readonly stream: "stdout" | "stderr"; readonly data: string }
  | { readonly _tag: "audit"; readonly event: AuditRecord }
  | { readonly _tag: "result"; readonly result: Schemas["SessionResult"] }

export interface LogEvent {
  /** Resumable position: pass as `lastEventId` to continue after this event. */
  readonly id: string | undefined
  readonly event: SessionEvent
}

export const terminalStatuses: ReadonlySet<string> = new Set(["completed", "failed", "timeout", "cancelled"])

/** Splits an SSE body into frames (`id:` and `data:` lines; a blank line ends one). */
export async function* sseFrames(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id: string | undefined; data: string }> {
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
        if (data.length > 0) yield { id, data: data.join("\n") }
        data = []
      } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""))
      else if (line.startsWith("id:")) id = line.slice(3).trim()
    }
  }
}

export interface FollowOptions {
  /** Resume after this event id (from an earlier `LogEvent.id`). */
  readonly lastEventId?: string
  /** Reconnect attempts in a row without an event before giving up (default 10). */
  readonly maxReconnects?: number
  readonly signal?: AbortSignal
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A session's events from the first (or after `lastEventId`) to its terminal status. A dropped connection,
 * a 5xx or a stream that ends early is reconnected with `Last-Event-ID`, so nothing is lost or repeated;
 * a 4xx (401, 404, …) throws its typed error at once.
 */
export async function* followEvents(
  connect: (lastEventId: string | undefined, signal: AbortSignal | undefined) => Promise<Response>,
  options: FollowOptions = {},
): AsyncGenerator<LogEvent, void, undefined> {
  let last = options.lastEventId
  let failures = 0
  const max = options.maxReconnects ?? 10
  while (true) {
    let failure: unknown
    try {
      const response = await connect(last, options.signal)
      if (!response.ok || response.body === null) {
        const text = await response.text()
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch { /* not JSON: keep the text */ }
        const error = apiError(response.status, body)
        if (response.status < 500) throw error
        failure = error
      } else {
        for await (const frame of sseFrames(response.body)) {
          const event = JSON.parse(frame.data) as SessionEvent
          failures = 0
          if (frame.id !== undefined) last = frame.id
          yield { id: frame.id, event }
          if (event._tag === "status" && terminalStatuses.has(event.status)) return
        }
        failure = new Error("the event stream ended before the session did")
      }
    } catch (e) {
      if (options.signal?.aborted || (e instanceof PawsApiError && e.status < 500)) throw e
      failure = e
    }
    if (++failures > max) throw failure
    await delay(Math.min(4000, 250 * 2 ** (failures - 1)))
  }
}
