import { Context, Deferred, Effect } from "effect"
import type { SessionDispatch, SessionEvent } from "@paws/core"

/** Runs one session to its end, emitting every event; returns when everything is released. */
export class SessionRunner extends Context.Service<SessionRunner, {
  readonly run: (
    dispatch: SessionDispatch,
    emit: (event: SessionEvent) => void,
    cancel: Deferred.Deferred<void>,
  ) => Effect.Effect<void>
}>()("paws/node/session/SessionRunner") {}

export const nowIso = (): string => new Date().toISOString()
export { Deferred }
