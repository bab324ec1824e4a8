import {
  type ApiScope,
  type LiveEvent,
  type LiveGateApi,
  type LiveSessionsApi,
  type Principal,
  scopeAllows,
  type Session,
  type SessionAccepted,
  SessionId,
  SessionSpec,
} from "@paws/core"
import { RpcTarget } from "capnweb"
import { type Context, Effect, Schema, Stream } from "effect"
import type { ApiKeys } from "./ApiKeys.ts"
import { auditLiveCall } from "./audit/LiveCallAudit.ts"
import type { EventFeed } from "./EventFeed.ts"
import type { Quotas } from "./Quotas.ts"
import { sessionEventRows } from "./http/EventStream.ts"
import type { Sessions } from "./Sessions.ts"
import type { SessionStore } from "./SessionStore.ts"

/** What the live API needs from the control plane. */
export interface LiveServices {
  readonly keys: ApiKeys["Service"]
  readonly sessions: Sessions["Service"]
  readonly store: SessionStore["Service"]
  readonly feed: EventFeed["Service"]
  readonly quotas: Quotas["Service"]
  readonly context: Context.Context<never>
}

/** An error a Cap'n Web caller sees: `_tag` and a message that names the problem. */
const failure = (tag: string, message: string): Error => Object.assign(new Error(message), { name: tag })

const decodeSpec = Schema.decodeUnknownEffect(SessionSpec)
/** How often a long-running call (subscribe) re-checks its key (ApiKeys.stillValid): a revocation bites within 5 s. */
const revocationCheckMs = 1_000
const decodeId = Schema.decodeUnknownEffect(SessionId)

/**
 * The capability an authenticated Cap'n Web client holds: create, read, cancel and follow
 * sessions of its key's project, each call checked against the key's scopes like the REST API.
 */
export class LiveSessions extends RpcTarget implements LiveSessionsApi {
  readonly #live: LiveServices
  readonly #principal: Principal
  constructor(live: LiveServices, principal: Principal) {
    super()
    this.#live = live
    this.#principal = principal
  }

  #run<A>(scope: ApiScope, effect: Effect.Effect<A, { readonly _tag: string; readonly message?: string | undefined }>) {
    if (!scopeAllows(this.#principal.scopes, scope)) {
      return Promise.reject(failure("Forbidden", `this API key lacks the ${scope} scope`))
    }
    // A capability is only as good as its key: every call re-checks it, and a call that runs on
    // (subscribe) is cut off within one check interval of the key's revocation.
    const valid = this.#live.keys.stillValid(this.#principal.keyId)
    const revoked = valid.pipe(
      Effect.delay(revocationCheckMs),
      Effect.forever,
      Effect.flip,
      Effect.flatMap(Effect.fail),
    )
    return Effect.runPromiseWith(this.#live.context)(
      valid.pipe(
        Effect.andThen(this.#live.quotas.admitRequest(this.#principal)),
        Effect.andThen(Effect.raceFirst(effect, revoked)),
        Effect.mapError((e) => failure(e._tag, e.message ?? e._tag)),
      ),
    )
  }

  createSession(spec: unknown): Promise<SessionAccepted> {
    return this.#run(
      "sessions:write",
      decodeSpec(spec).pipe(
        Effect.mapError((e) => ({ _tag: "InvalidRequest", message: e.message })),
        Effect.flatMap((s) => this.#live.sessions.create(s, this.#principal, undefined)),
        auditLiveCall(this.#live.context, this.#principal, "live.sessions.create", (r) => r?.sessionId ?? ""),
      ),
    )
  }

  getSession(id: string): Promise<Session> {
    return this.#run("read", this.#session(id))
  }

  cancelSession(id: string): Promise<Session> {
    return this.#run(
      "sessions:write",
      decodeId(id).pipe(
        Effect.mapError((e) => ({ _tag: "InvalidRequest", message: e.message })),
        Effect.flatMap((sid) => this.#live.sessions.cancel(sid, this.#principal.project)),
        auditLiveCall(this.#live.context, this.#principal, "live.sessions.cancel", () => String(id)),
      ),
    )
  }

  /**
   * Calls `onEvent` with every event of the session after `afterId` (stored first, then live),
   * awaiting each call, and resolves with the final session once it has ended.
   */
  subscribe(
    id: string,
    onEvent: (event: LiveEvent) => unknown,
    afterId = "0",
  ): Promise<Session> {
    const { store, feed } = this.#live
    const lookup = this.#session(id)
    return this.#run(
      "read",
      Effect.gen(function* () {
        const session = yield* lookup
        yield* sessionEventRows(store, feed, session.id, afterId).pipe(
          Stream.runForEach((rows) =>
            rows === undefined ? Effect.void : Effect.promise(async () => {
              for (const row of rows) await onEvent({ id: row.id, event: row.event })
            })
          ),
        )
        return yield* lookup
      }),
    )
  }

  #session(id: string): Effect.Effect<Session, { readonly _tag: string; readonly message: string }> {
    const store = this.#live.store
    const project = this.#principal.project
    return Effect.gen(function* () {
      const sid = yield* decodeId(id).pipe(Effect.mapError((e) => ({ _tag: "InvalidRequest", message: e.message })))
      const session = yield* store.get(sid)
      // Another project's session is as unknown as one that never existed (like REST's 404).
      if (session === undefined || session.project !== project) {
        return yield* Effect.fail({ _tag: "SessionNotFound", message: `no session ${id}` })
      }
      return session
    })
  }
}

/** The only thing an unauthenticated Cap'n Web connection can do: trade an API key for a capability. */
export class LiveGate extends RpcTarget implements LiveGateApi {
  readonly #live: LiveServices
  constructor(live: LiveServices) {
    super()
    this.#live = live
  }

  authenticate(apiKey: string): Promise<LiveSessions> {
    return Effect.runPromiseWith(this.#live.context)(
      this.#live.keys.authenticate(typeof apiKey === "string" ? apiKey : "").pipe(
        Effect.map((principal) => new LiveSessions(this.#live, principal)),
        Effect.mapError((e) => failure("Unauthorized", e.message)),
      ),
    )
  }
}
