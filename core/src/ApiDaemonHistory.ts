import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { DaemonName, DaemonNotFound } from "./Daemon.ts"
import { ServiceUnavailable } from "./Errors.ts"
import { LlmExchange } from "./LlmExchange.ts"

export const DaemonHistoryEntry = Schema.Struct({
  ...LlmExchange.fields,
  /** The invocation (session) whose proxy recorded it. */
  sessionId: Schema.String,
  recordedAt: Schema.String,
}).annotate({ identifier: "DaemonHistoryEntry" })
export type DaemonHistoryEntry = typeof DaemonHistoryEntry.Type

export const DaemonHistory = Schema.Struct({
  daemon: Schema.String,
  /** Oldest first; the newest `limit` within retention. */
  entries: Schema.Array(DaemonHistoryEntry),
}).annotate({ identifier: "DaemonHistory" })
export type DaemonHistory = typeof DaemonHistory.Type

export const maxHistoryPage = 1000

const HistoryLimit = Schema.NumberFromString.pipe(
  Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxHistoryPage })),
)

/** A daemon's recorded LLM exchanges (its memory): what its next invocation finds at /input/history.jsonl. */
export class DaemonHistoryApi extends HttpApiGroup.make("daemonHistory")
  .add(
    HttpApiEndpoint.get("history", "/:name/history", {
      params: { name: DaemonName },
      query: { limit: Schema.optional(HistoryLimit) },
      success: DaemonHistory,
      error: [DaemonNotFound, ServiceUnavailable],
    }).pipe(scoped(
      "read",
      "A daemon's LLM history",
      "The exchanges with LLM APIs (Anthropic Messages, OpenAI-compatible chat completions) that the " +
        "proxy recorded for a daemon's invocations: request and response bodies (streams as raw SSE text), " +
        "never headers, with injected credential values redacted; each body cut at " +
        "PAWS_LLM_HISTORY_BODY_MAX_BYTES. Oldest first, the newest `limit` (default 100) within retention.",
    )),
  )
  .prefix("/v1/daemons")
  .annotateMerge(OpenApi.annotations({ description: "Daemon memory: recorded LLM history." })) {}
