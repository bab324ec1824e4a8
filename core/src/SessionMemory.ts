import { Schema } from "effect"
import { LlmExchange } from "./LlmExchange.ts"
import { SessionEvent } from "./SessionEvent.ts"

/**
 * What carries over between sessions that share a memory key (a daemon's invocations):
 * `/state` (a tar archive, moved through control's storage so any node can run the next one) and
 * the LLM exchanges the proxy recorded. Only control sets a key; the public session body cannot.
 */

const positiveInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))

/** The memory part of a dispatch: what the guest starts with, and what the node should collect. */
export const MemoryDispatch = Schema.Struct({
  /** The latest good `/state`, a tar archive as base64; absent on the first invocation. */
  state: Schema.optionalKey(Schema.String),
  /** The largest `/state` archive (bytes) the node sends back; a bigger one is not saved. */
  stateMaxBytes: positiveInt,
  /** Earlier exchanges as JSON lines, written to `/input/history.jsonl`. */
  history: Schema.optionalKey(Schema.String),
  /** Ask the proxy to record LLM exchanges, each body capped at `llmMaxBytes`. */
  recordLlmHistory: Schema.Boolean,
  llmMaxBytes: positiveInt,
}).annotate({ identifier: "MemoryDispatch" })
export type MemoryDispatch = typeof MemoryDispatch.Type

/** `/state` after a workload that exited 0: the node sends it once, before the result. */
export const StateSavedEvent = Schema.TaggedStruct("state", {
  /** tar archive, base64. */
  tar: Schema.String,
}).annotate({ identifier: "StateSavedEvent" })

export const LlmExchangeEvent = Schema.TaggedStruct("llm", {
  exchange: LlmExchange,
}).annotate({ identifier: "LlmExchangeEvent" })

/**
 * What a node streams for a running session: the client-visible SessionEvent, plus memory events
 * that control stores under the session's memory key and never shows on /events.
 */
export const NodeSessionEvent = Schema.Union([...SessionEvent.members, StateSavedEvent, LlmExchangeEvent]).annotate({
  identifier: "NodeSessionEvent",
})
export type NodeSessionEvent = typeof NodeSessionEvent.Type
