import { SnapshotUnavailable } from "./Errors.ts"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { DaemonDisabled, DaemonInvocation, DaemonName, DaemonNotFound, TriggerName } from "./Daemon.ts"
import { InvalidRequest, PayloadTooLarge, Unauthorized } from "./Errors.ts"

/** A verified delivery that runs nothing: a duplicate GitHub delivery, one no filter matches, a ping. */
export const HookAck = Schema.Struct({
  message: Schema.String,
  duplicate: Schema.optionalKey(Schema.Boolean),
  ignored: Schema.optionalKey(Schema.Boolean),
  pong: Schema.optionalKey(Schema.Boolean),
}).annotate({ identifier: "HookAck" })

/** The public door of webhook and GitHub triggers: no API key, the signature authenticates. */
export class HooksApi extends HttpApiGroup.make("hooks")
  .add(
    HttpApiEndpoint.post("deliver", "/v1/hooks/:daemon/:trigger", {
      params: { daemon: DaemonName, trigger: TriggerName },
      headers: {
        "x-paws-timestamp": Schema.optional(Schema.String),
        "x-paws-signature-256": Schema.optional(Schema.String),
        "x-hub-signature-256": Schema.optional(Schema.String),
        "x-github-event": Schema.optional(Schema.String),
        "x-github-delivery": Schema.optional(Schema.String),
      },
      payload: Schema.Unknown,
      success: [DaemonInvocation.pipe(HttpApiSchema.status(202)), HookAck],
      error: [InvalidRequest, Unauthorized, DaemonNotFound, DaemonDisabled, PayloadTooLarge, SnapshotUnavailable],
    }).annotateMerge(OpenApi.annotations({
      summary: "Deliver a webhook to a daemon's trigger",
      description: "No API key: the signature is checked before anything runs, and a refused delivery creates no " +
        "session. `webhook` triggers: `X-Paws-Timestamp` (Unix seconds, within PAWS_HOOK_REPLAY_WINDOW_S of now) " +
        'and `X-Paws-Signature-256: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` with the trigger\'s ' +
        "secret; a signature is accepted once. `github` triggers: GitHub's own headers (`X-Hub-Signature-256`, " +
        "`X-GitHub-Event`, `X-GitHub-Delivery`, deduplicated). Bodies above PAWS_HOOK_MAX_BYTES: 413. The body " +
        "reaches the guest as `/input/event.json`; headers and signatures never do.",
    })),
  )
  .annotateMerge(OpenApi.annotations({ description: "Hooks: signed deliveries that fire daemons (public)." })) {}
