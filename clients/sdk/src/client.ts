import createFetchClient, { type Client } from "openapi-fetch"
import { apiError } from "./errors.ts"
import { followEvents, type FollowOptions, type LogEvent, terminalStatuses } from "./events.ts"
import type { components, operations, paths } from "./generated/schema.ts"
import { retryingFetch, type RetryOptions } from "./retry.ts"

type Schemas = components["schemas"]
export type SessionSpec = Schemas["SessionSpec"]
export type Session = Schemas["Session"]
export type SessionAccepted = Schemas["SessionAccepted"]
export type SessionPage = Schemas["SessionPage"]
export type SessionStatus = Schemas["SessionStatus"]
export type SnapshotRequest = Schemas["SnapshotRequest"]
export type Snapshot = Schemas["Snapshot"]
export type SnapshotAccepted = Schemas["SnapshotAccepted"]
export type DaemonSpec = Schemas["DaemonSpec"]
export type DaemonPatch = Schemas["DaemonPatch"]
export type Daemon = Schemas["Daemon"]
export type DaemonSaved = Schemas["DaemonSaved"]
export type DaemonInvocation = Schemas["DaemonInvocation"]
export type ListSessionsQuery = Omit<NonNullable<operations["sessions.list"]["parameters"]["query"]>, "limit"> & {
  readonly limit?: number
}

export interface ClientOptions {
  /** Where the control plane listens, e.g. `http://127.0.0.1:4000`. */
  readonly baseUrl: string
  /** An API key (`paws keys create`); sent as `Authorization: Bearer …`. */
  readonly apiKey: string
  /** Retries of 429/503 answers; `{ retries: 0 }` turns them off. */
  readonly retry?: RetryOptions
  /** A custom `fetch` (tests, proxies); defaults to the global one. */
  readonly fetch?: (request: Request) => Promise<Response>
}

export interface WaitOptions {
  /** Poll interval (default 500 ms). */
  readonly intervalMs?: number
  /** Give up after this long (default: never). */
  readonly timeoutMs?: number
}

/** openapi-fetch's result, turned into the data or a thrown typed error. */
const unwrap = async <T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> => {
  const { data, error, response } = await call
  if (!response.ok) throw apiError(response.status, error)
  return data as T
}

/** A client for the paws control API: `paws.sessions.*`, `paws.snapshots.*`, `paws.daemons.*`, and the raw typed `paws.api`. */
export const createClient = (options: ClientOptions) => {
  const baseUrl = options.baseUrl.replace(/\/+$/, "")
  const fetch = retryingFetch(options.fetch ?? ((request) => globalThis.fetch(request)), options.retry)
  const api: Client<paths> = createFetchClient<paths>({
    baseUrl,
    fetch,
    headers: { authorization: `Bearer ${options.apiKey}` },
  })
  const id = (value: string) => ({ params: { path: { id: value } } })

  const sessions = {
    /** Queue a session. An idempotency key is sent by default, so a retried create never makes two sessions. */
    create: (spec: SessionSpec, opts: { readonly idempotencyKey?: string } = {}): Promise<SessionAccepted> =>
      unwrap(api.POST("/v1/sessions", {
        body: spec,
        params: { header: { "idempotency-key": opts.idempotencyKey ?? crypto.randomUUID() } },
      })),
    get: (sessionId: string): Promise<Session> => unwrap(api.GET("/v1/sessions/{id}", id(sessionId))),
    /** One page, newest first; pass `nextCursor` back as `cursor` for the next. */
    list: ({ limit, ...query }: ListSessionsQuery = {}): Promise<SessionPage> =>
      unwrap(api.GET("/v1/sessions", {
        params: { query: { ...query, ...(limit === undefined ? {} : { limit: String(limit) }) } },
      })),
    /** Every session matching `query`, following the cursor page by page. */
    async *listAll(query: ListSessionsQuery = {}): AsyncGenerator<Session, void, undefined> {
      let cursor: string | undefined = query.cursor
      do {
        const page: SessionPage = await sessions.list({ ...query, ...(cursor === undefined ? {} : { cursor }) })
        yield* page.sessions
        cursor = page.nextCursor ?? undefined
      } while (cursor !== undefined)
    },
    cancel: (sessionId: string): Promise<Session> => unwrap(api.DELETE("/v1/sessions/{id}", id(sessionId))),
    /** Polls until the session reaches a terminal status and returns it. */
    wait: async (sessionId: string, opts: WaitOptions = {}): Promise<Session> => {
      const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs
      while (true) {
        const session = await sessions.get(sessionId)
        if (terminalStatuses.has(session.status)) return session
        if (Date.now() > deadline) {
          throw new Error(`session ${sessionId} still ${session.status} after ${opts.timeoutMs} ms`)
        }
        await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 500))
      }
    },
    /** The session's events (status, output, audit, result) as they happen, to its end; resumes on reconnect. */
    logs: (sessionId: string, opts: FollowOptions = {}): AsyncGenerator<LogEvent, void, undefined> =>
      followEvents(
        (lastEventId, signal) =>
          fetch(
            new Request(`${baseUrl}/v1/sessions/${encodeURIComponent(sessionId)}/events`, {
              headers: {
                authorization: `Bearer ${options.apiKey}`,
                accept: "text/event-stream",
                ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
              },
              ...(signal === undefined ? {} : { signal }),
            }),
          ),
        opts,
      ),
  }

  const name = (value: string) => ({ params: { path: { name: value } } })
  const snapshots = {
    /** Start building a snapshot (admin); `get` shows its phase. */
    create: (request: SnapshotRequest): Promise<SnapshotAccepted> =>
      unwrap(api.POST("/v1/snapshots", { body: request })),
    list: (): Promise<ReadonlyArray<Snapshot>> => unwrap(api.GET("/v1/snapshots")),
    get: (snapshot: string): Promise<Snapshot> => unwrap(api.GET("/v1/snapshots/{name}", name(snapshot))),
    delete: async (snapshot: string): Promise<void> => {
      await unwrap(api.DELETE("/v1/snapshots/{name}", name(snapshot)))
    },
  }

  const daemons = {
    /** Define a daemon; `secrets` holds the webhook/GitHub trigger signing secrets, returned only here. */
    create: (spec: DaemonSpec): Promise<DaemonSaved> => unwrap(api.POST("/v1/daemons", { body: spec })),
    list: (): Promise<ReadonlyArray<Daemon>> => unwrap(api.GET("/v1/daemons")),
    get: (daemon: string): Promise<Daemon> => unwrap(api.GET("/v1/daemons/{name}", name(daemon))),
    /** The fields given replace the stored ones; new signed triggers' secrets come back in `secrets`. */
    update: (daemon: string, patch: DaemonPatch): Promise<DaemonSaved> =>
      unwrap(api.PATCH("/v1/daemons/{name}", { ...name(daemon), body: patch })),
    delete: async (daemon: string): Promise<void> => {
      await unwrap(api.DELETE("/v1/daemons/{name}", name(daemon)))
    },
    /** A manual invocation under the daemon's concurrency policy. */
    run: (daemon: string): Promise<DaemonInvocation> => unwrap(api.POST("/v1/daemons/{name}/run", name(daemon))),
    /** The daemon's invocations (sessions), newest first. */
    sessions: (daemon: string, query: Omit<ListSessionsQuery, "daemon"> = {}): Promise<SessionPage> =>
      sessions.list({ ...query, daemon }),
  }

  return { sessions, snapshots, daemons, api }
}

export type PawsClient = ReturnType<typeof createClient>
