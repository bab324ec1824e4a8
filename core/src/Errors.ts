import { Schema } from "effect"

/** A field-level validation problem, named so that a client can fix it. */
export const FieldIssue = Schema.Struct({ path: Schema.String, message: Schema.String }).annotate({
  identifier: "FieldIssue",
})

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String,
  issues: Schema.Array(FieldIssue),
}, { httpApiStatus: 400 }) {}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String,
}, { httpApiStatus: 401 }) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String,
  requiredScope: Schema.String,
}, { httpApiStatus: 403 }) {}

export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()("SessionNotFound", {
  sessionId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  sessionId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

/** No node can ever run the request as the nodes stand (e.g. none holds its snapshot): queueing it would strand it. */
export class SnapshotUnavailable extends Schema.TaggedError<SnapshotUnavailable>()("SnapshotUnavailable", {
  snapshot: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String,
  maxBytes: Schema.Int,
}, { httpApiStatus: 413 }) {}

export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  message: Schema.String,
}, { httpApiStatus: 503 }) {}

export class NodeNotFound extends Schema.TaggedError<NodeNotFound>()("NodeNotFound", {
  nodeId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

/** Node-side errors carried over the control↔node RPC. */
export class NodeAtCapacity extends Schema.TaggedError<NodeAtCapacity>()("NodeAtCapacity", {
  message: Schema.String,
}) {}

export class UnknownSnapshot extends Schema.TaggedError<UnknownSnapshot>()("UnknownSnapshot", {
  snapshot: Schema.String,
  message: Schema.String,
}) {}

export class SessionAlreadyRunning extends Schema.TaggedError<SessionAlreadyRunning>()("SessionAlreadyRunning", {
  sessionId: Schema.String,
  message: Schema.String,
}) {}

export class NodeSessionNotFound extends Schema.TaggedError<NodeSessionNotFound>()("NodeSessionNotFound", {
  sessionId: Schema.String,
  message: Schema.String,
}) {}
