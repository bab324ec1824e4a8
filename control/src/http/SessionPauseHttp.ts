import {
  Api,
  credentialProblems,
  CurrentPrincipal,
  InvalidRequest,
  ServiceUnavailable,
  type Session,
  type SessionId,
  SessionNotFound,
  SessionNotLive,
  type SessionStatus,
} from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Dispatcher } from "../Dispatcher.ts"
import { EventFeed } from "../EventFeed.ts"
import { NodeRegistry } from "../NodeRegistry.ts"
import { claimPaused, replacePausedCredentials } from "../PausedClaim.ts"
import { ReplicaLease } from "../ReplicaLease.ts"
import { SessionStore } from "../SessionStore.ts"
import { Vault } from "../Vault.ts"

type Credentials = { [host: string]: { headers: { [name: string]: string } } }

/** How long a pause (save) or a resume (restore) may take before the caller is told to look again. */
const settleMs = 120_000

/**
 * Pause and resume: control asks the session's node (PauseSession), or dispatches the paused
 * session back to that node with `resume: true`, and answers once the node's status event has
 * moved the session (`paused`, `running`, or an end).
 */
export const SessionPauseHttp = HttpApiBuilder.group(
  Api,
  "sessionPause",
  Effect.fn(function* (handlers) {
    const store = yield* SessionStore
    const registry = yield* NodeRegistry
    const dispatcher = yield* Dispatcher
    const feed = yield* EventFeed
    const lease = yield* ReplicaLease
    const vault = yield* Vault

    /** The caller's session; another project's is a 404 like an unknown id. */
    const ownSession = (id: SessionId) =>
      Effect.gen(function* () {
        const { project } = yield* CurrentPrincipal
        const s = yield* store.get(id)
        if (s === undefined || s.project !== project) {
          return yield* new SessionNotFound({ sessionId: id, message: `no session ${id}` })
        }
        return s
      })
    const notLive = (s: Session, message: string) =>
      new SessionNotLive({ sessionId: s.id, status: s.status, message: `session ${s.id} is ${s.status}; ${message}` })
    const nodeOf = (s: Session) =>
      Effect.gen(function* () {
        const entry = s.node === null ? undefined : yield* registry.get(s.node)
        if (entry === undefined) {
          return yield* new ServiceUnavailable({
            message: `node ${s.node} of session ${s.id} is not connected (a paused session resumes only there)`,
          })
        }
        return entry
      })
    /** Waits until the session leaves `from`; its status then (still `from` if `gaveUp` says so first). */
    const settled = (id: SessionId, from: SessionStatus, gaveUp: Effect.Effect<boolean>) =>
      Effect.gen(function* () {
        const until = Date.now() + settleMs
        for (;;) {
          const s = yield* store.get(id)
          if (s === undefined || s.status !== from || Date.now() > until || (yield* gaveUp)) return s?.status ?? from
          yield* Effect.sleep(50)
        }
      })

    return handlers
      .handle("pause", ({ params }) =>
        Effect.gen(function* () {
          const s = yield* ownSession(params.id)
          if (s.status !== "running") return yield* notLive(s, "only a running session can be paused")
          const entry = yield* nodeOf(s)
          yield* entry.client.PauseSession({ sessionId: params.id }).pipe(
            Effect.catchTags({
              NodeSessionNotFound: () => Effect.fail(notLive(s, "it is not live on its node")),
              SessionNotPausable: (e) => Effect.fail(notLive(s, `it cannot be paused now: ${e.message}`)),
              RpcClientError: () =>
                Effect.fail(new ServiceUnavailable({ message: `the node of session ${s.id} did not answer` })),
            }),
          )
          // Saved; the node releases the VM and its stream ends with `paused`.
          const status = yield* settled(params.id, "running", Effect.succeed(false))
          yield* feed.publish(params.id)
          return { sessionId: params.id, status }
        }))
      .handle("resume", ({ params }) =>
        Effect.gen(function* () {
          const s = yield* ownSession(params.id)
          if (s.status !== "paused") return yield* notLive(s, "only a paused session can be resumed")
          if (yield* dispatcher.dispatching(params.id)) return yield* notLive(s, "it is being paused or resumed")
          const entry = yield* nodeOf(s)
          // The node reports what it holds paused (read from its disk, so across its restarts too); asked
          // now, as a heartbeat's report may predate the pause.
          const report = yield* entry.client.NodeStatus().pipe(Effect.timeout(10_000), Effect.option)
          const held = report._tag === "Some" ? report.value.pausedSessions : undefined
          if (held !== undefined && !held.includes(params.id)) {
            yield* store.transition(params.id, "failed", "paused_vm_lost", "paused")
            yield* feed.publish(params.id)
            return yield* notLive(
              { ...s, status: "failed" },
              `its node ${entry.info.id} no longer holds its saved VM; the session failed (paused_vm_lost)`,
            )
          }
          const claimed = yield* claimPaused(params.id, lease.id)
          if (claimed === undefined) return yield* notLive(s, "it changed meanwhile")
          yield* dispatcher.resume(claimed, entry)
          const status = yield* settled(params.id, "paused", Effect.map(dispatcher.dispatching(params.id), (d) => !d))
          if (status === "paused") {
            return yield* new ServiceUnavailable({
              message: `node ${entry.info.id} could not resume session ${s.id} (it stays paused; see the node's log)`,
            })
          }
          return { sessionId: params.id, status }
        }))
      .handle("rotateCredentials", ({ params, payload }) =>
        Effect.gen(function* () {
          const s = yield* ownSession(params.id)
          if (s.status !== "paused") {
            return yield* notLive(s, "credentials can be rotated while it is paused (they take effect at resume)")
          }
          // Values only: which hosts get which headers was decided (and checked) when the session was created.
          const known = s.spec.network.credentials ?? {}
          const issues: Array<{ path: string; message: string }> = []
          for (const [host, rule] of Object.entries(payload.credentials)) {
            const names = known[host]?.headers
            if (names === undefined) {
              const hosts = Object.keys(known).join(", ") || "none"
              issues.push({
                path: `credentials.${host}`,
                message: `is not one of the session's credential hosts (${hosts})`,
              })
              continue
            }
            for (const name of Object.keys(rule.headers)) {
              if (!names.some((n) => n.toLowerCase() === name.toLowerCase())) {
                issues.push({
                  path: `credentials.${host}.headers.${name}`,
                  message: `is not one of the headers the session injects for ${host} (${names.join(", ")})`,
                })
              }
            }
          }
          const weak = credentialProblems({
            allowOut: [],
            credentials: payload.credentials,
            allowWildcardCredential: true,
          })
          issues.push(...weak.map((p) => ({ path: p.path.replace(/^network\./, ""), message: p.message })))
          if (issues.length > 0) {
            return yield* new InvalidRequest({
              message: issues.map((i) => `${i.path}: ${i.message}`).join("; "),
              issues,
            })
          }
          const replaced = yield* replacePausedCredentials(params.id, (sealed) =>
            Effect.gen(function* () {
              const current: Credentials = sealed === null
                ? {}
                : JSON.parse(yield* Effect.orDie(vault.open(sealed, params.id)))
              for (const [host, rule] of Object.entries(payload.credentials)) {
                const headers = { ...current[host]?.headers }
                for (const [name, value] of Object.entries(rule.headers)) {
                  for (const old of Object.keys(headers)) {
                    if (old.toLowerCase() === name.toLowerCase()) delete headers[old]
                  }
                  headers[name] = value
                }
                current[host] = { headers }
              }
              return vault.seal(JSON.stringify(current), params.id)
            }))
          const after = yield* store.get(params.id)
          if (!replaced) return yield* notLive(after ?? s, "it changed meanwhile; nothing was rotated")
          yield* Effect.logInfo("session credentials rotated while paused").pipe(
            Effect.annotateLogs({ session: params.id, hosts: Object.keys(payload.credentials).join(",") }),
          )
          return { sessionId: params.id, status: "paused" as const }
        }))
  }),
)
