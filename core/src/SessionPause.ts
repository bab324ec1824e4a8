import { Schema } from "effect"
import { Rpc } from "effect/rpc"
import { NodeSessionNotFound } from "./Errors.ts"
import { SessionId } from "./Ids.ts"

/** The node cannot pause this session now (its script still runs, or its VM was cold-booted). */
export class SessionNotPausable extends Schema.TaggedError<SessionNotPausable>()("SessionNotPausable", {
  sessionId: Schema.String,
  message: Schema.String,
}) {}

/**
 * Saves a running session's VM on its node (memory + device state, disk overlay) and releases it:
 * VM slot, TAP, firewall and proxy. Succeeds once the files are saved; the session's RunSession
 * stream then ends with status `paused`. Resume is a RunSession with `resume: true` to the same node.
 */
export const PauseSession = Rpc.make("PauseSession", {
  payload: { sessionId: SessionId },
  error: Schema.Union([NodeSessionNotFound, SessionNotPausable]),
})
