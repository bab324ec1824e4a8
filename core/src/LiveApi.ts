import type { SessionAccepted } from "./Api.ts"
import type { Session } from "./Session.ts"
import type { SessionEvent } from "./SessionEvent.ts"

/** Where the live API (Cap'n Web over one WebSocket) is served. */
export const livePath = "/v1/rpc"

/** One stored event of a session, as the live API delivers it (the id resumes a subscription). */
export interface LiveEvent {
  readonly id: string
  readonly event: SessionEvent
}

/**
 * The capability an authenticated live client holds. Every call is checked against the API key's
 * scopes like the REST API, and stops working within 5 s of the key's revocation. Failures are
 * Errors whose `name` is the API's error tag (InvalidRequest, SessionNotFound, Forbidden …).
 */
export interface LiveSessionsApi {
  createSession(spec: unknown): Promise<SessionAccepted>
  getSession(id: string): Promise<Session>
  cancelSession(id: string): Promise<Session>
  /**
   * Calls `onEvent` with every event after `afterId` (stored first, then live), awaiting each
   * call, and resolves with the final session once it has ended.
   */
  subscribe(id: string, onEvent: (event: LiveEvent) => unknown, afterId?: string): Promise<Session>
}

/** What an unauthenticated connection can do: trade an API key for the sessions capability. */
export interface LiveGateApi {
  authenticate(apiKey: string): Promise<LiveSessionsApi>
}

/** The live API's WebSocket URL for a control plane's base URL. */
export const liveUrl = (baseUrl: string): string => {
  const url = new URL(livePath, baseUrl)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  return url.toString()
}
