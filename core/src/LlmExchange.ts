import * as Schema from "effect/Schema" // per-module import: the proxy loads this file

const nonNegativeInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))

/** One recorded request/response with an LLM API: bodies only (never headers), credential values redacted. */
export const LlmExchange = Schema.Struct({
  time: Schema.String,
  host: Schema.String,
  method: Schema.String,
  path: Schema.String,
  status: nonNegativeInt,
  /** The request body as the guest sent it (UTF-8). */
  request: Schema.String,
  /** The response body as the guest received it; a stream (SSE) is kept as its raw event text. */
  response: Schema.String,
  /** A body was cut at the proxy's per-exchange cap. */
  truncated: Schema.Boolean,
}).annotate({ identifier: "LlmExchange" })
export type LlmExchange = typeof LlmExchange.Type
