import * as Schema from "effect/Schema"
import { McpServerName } from "./McpGrant.ts"
import { EnvName, hardLimits, HeaderName, HeaderValue } from "./SessionSpec.ts"

const Arg = Schema.String.pipe(Schema.check(Schema.isMaxLength(4096)))
const MaxCallsPerMinute = Schema.Int.pipe(
  Schema.check(Schema.isBetween({ minimum: 1, maximum: 100_000 }, { message: "must be an integer from 1 to 100000" })),
)
const EnvValue = Schema.String.pipe(Schema.check(Schema.isMaxLength(hardLimits.envValueBytes)))

/**
 * `POST /v1/mcp-servers`. `transport: "stdio"`: `command` (+ `args`, `env`), a server the node
 * spawns per session; `env` values are secrets (vault). `transport: "http"`: `url` (+ `headers`),
 * a remote Streamable HTTP server; `headers` values are secrets (vault). One flat object, not a
 * union, so that every SDK generator takes it; McpServers checks the fields that go together.
 */
export const McpServerRequest = Schema.Struct({
  name: McpServerName,
  transport: Schema.Literals(["stdio", "http"]),
  command: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(4096)))),
  args: Schema.optionalKey(Schema.Array(Arg).pipe(Schema.check(Schema.isMaxLength(64)))),
  env: Schema.optionalKey(
    Schema.Record(EnvName, EnvValue).pipe(Schema.check(Schema.isMaxProperties(hardLimits.envEntries))),
  ),
  url: Schema.optionalKey(
    Schema.String.pipe(
      Schema.check(Schema.isPattern(/^https?:\/\/[^\s]{1,2000}$/, { message: "must be an http(s) URL" })),
    ),
  ),
  headers: Schema.optionalKey(
    Schema.Record(HeaderName, HeaderValue).pipe(Schema.check(Schema.isMaxProperties(hardLimits.headersPerHost))),
  ),
  /** Record tool-call arguments (redacted of this server's secrets) in the audit events. Off by default. */
  auditArguments: Schema.optionalKey(Schema.Boolean),
  /** At most this many `tools/call` per session per minute (a token bucket: bursts up to it); absent: no limit. */
  maxCallsPerMinute: Schema.optionalKey(MaxCallsPerMinute),
}).annotate({ identifier: "McpServerRequest" })
export type McpServerRequest = typeof McpServerRequest.Type

/** A registered server as stored and returned: secret names only, never values. */
export const McpServerView = Schema.Struct({
  name: McpServerName,
  transport: Schema.Literals(["stdio", "http"]),
  command: Schema.optionalKey(Schema.String),
  args: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Names of the env variables set (values are in the vault). */
  env: Schema.optionalKey(Schema.Array(Schema.String)),
  url: Schema.optionalKey(Schema.String),
  /** Names of the headers sent (values are in the vault). */
  headers: Schema.optionalKey(Schema.Array(Schema.String)),
  auditArguments: Schema.Boolean,
  maxCallsPerMinute: Schema.optionalKey(Schema.Number),
  createdAt: Schema.String,
}).annotate({ identifier: "McpServerView" })
export type McpServerView = typeof McpServerView.Type

/**
 * What a node gets for one granted server: the registration with secret values in clear (memory
 * and the RPC wire only) and the session's tool allowlist (absent: every tool).
 */
export const McpDispatchServer = Schema.Struct({
  name: McpServerName,
  transport: Schema.Literals(["stdio", "http"]),
  command: Schema.optionalKey(Schema.String),
  args: Schema.optionalKey(Schema.Array(Schema.String)),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  url: Schema.optionalKey(Schema.String),
  headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  auditArguments: Schema.optionalKey(Schema.Boolean),
  tools: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Tools whose calls wait for a human's decision (the session's grant). */
  approve: Schema.optionalKey(Schema.Array(Schema.String)),
  maxCallsPerMinute: Schema.optionalKey(Schema.Number),
}).annotate({ identifier: "McpDispatchServer" })
export type McpDispatchServer = typeof McpDispatchServer.Type

export class McpServerNotFound extends Schema.TaggedError<McpServerNotFound>()("McpServerNotFound", {
  name: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

export class McpServerExists extends Schema.TaggedError<McpServerExists>()("McpServerExists", {
  name: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}
