import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { SessionNotLive } from "./ApiLiveSessions.ts"
import { scoped } from "./ApiScoped.ts"
import { InvalidRequest, ServiceUnavailable, SessionNotFound } from "./Errors.ts"
import { HostPattern } from "./HostPattern.ts"
import { SessionId } from "./Ids.ts"
import { CredentialRule } from "./SessionSpec.ts"
import { SessionStatus } from "./SessionStatus.ts"

export const PauseOutcome = Schema.Struct({
  sessionId: SessionId,
  status: SessionStatus,
}).annotate({ identifier: "PauseOutcome" })
export type PauseOutcome = typeof PauseOutcome.Type

/** New values for credentials a session already has (same hosts, same header names). */
export const CredentialRotation = Schema.Struct({
  credentials: Schema.Record(HostPattern, CredentialRule),
}).annotate({ identifier: "CredentialRotation" })
export type CredentialRotation = typeof CredentialRotation.Type

/** Pause a running session's VM to its node's disk and resume it there later. */
export class SessionPauseApi extends HttpApiGroup.make("sessionPause")
  .add(
    HttpApiEndpoint.post("pause", "/:id/pause", {
      params: { id: SessionId },
      success: PauseOutcome,
      error: [SessionNotFound, SessionNotLive, ServiceUnavailable],
    }).pipe(scoped(
      "sessions:write",
      "Pause a running session",
      "Saves the session's VM (memory, device state and disk) on its node and frees its VM slot, network and " +
        "proxy; answers once the session is `paused`. Only a live session can be paused: an `interactive` " +
        "workload, or a `keepAlive` script once its script has finished, and only a VM restored from a snapshot " +
        "(the default). Paused time does not count toward `timeoutMs`. Any other status is a 409 naming it.",
    )),
    HttpApiEndpoint.post("resume", "/:id/resume", {
      params: { id: SessionId },
      success: PauseOutcome,
      error: [SessionNotFound, SessionNotLive, ServiceUnavailable],
    }).pipe(scoped(
      "sessions:write",
      "Resume a paused session",
      "Restores the paused VM on the node that saved it (its files live there; a 503 when that node is not " +
        "connected), with its clock and entropy refreshed, a new network slot and a fresh proxy whose credentials " +
        "are read from the vault now (a credential rotated while paused is the one injected). Answers once the " +
        "session is `running` again. A session that is not `paused` is a 409 naming its status.",
    )),
    HttpApiEndpoint.put("rotateCredentials", "/:id/credentials", {
      params: { id: SessionId },
      payload: CredentialRotation,
      success: PauseOutcome,
      error: [SessionNotFound, SessionNotLive, InvalidRequest],
    }).pipe(scoped(
      "sessions:write",
      "Rotate a paused session's credentials",
      "Replaces the values of credentials the session already has (each host and header name must be one of its " +
        "own; which hosts get which headers is fixed when the session is created). The new values go to the vault " +
        "and are injected by the fresh proxy at resume. Only a `paused` session: a 409 names any other status.",
    )),
  )
  .prefix("/v1/sessions")
  .annotateMerge(OpenApi.annotations({ description: "Pause and resume: a live session saved to its node's disk." })) {}
