import {
  credentialWarnings,
  grantServer,
  hostMatches,
  type IdempotencyConflict,
  IllegalTransition,
  InvalidRequest,
  isTerminal,
  newSessionId,
  parseEgressRule,
  placementProblem,
  type Principal,
  type RateLimited,
  type Session,
  type SessionAccepted,
  type SessionId,
  type SessionInput,
  SessionNotFound,
  type SessionSpec,
  sessionSpecProblems,
  type SessionSpecView,
  type SessionTrigger,
  SnapshotUnavailable,
  withSessionDefaults,
  workloadText,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { Approvals } from "./Approvals.ts"
import { ControlConfig } from "./ControlConfig.ts"
import { Dispatcher } from "./Dispatcher.ts"
import { EventFeed } from "./EventFeed.ts"
import type { SessionMemory } from "./MemoryStore.ts"
import { McpServers } from "./McpServers.ts"
import { Metrics } from "./Metrics.ts"
import { NodePresence } from "./NodePresence.ts"
import { Projects } from "./Projects.ts"
import { QueueSignal } from "./QueueSignal.ts"
import { Quotas } from "./Quotas.ts"
import { SnapshotProjects } from "./SnapshotProjects.ts"
import { SessionStore } from "./SessionStore.ts"
import { Vault } from "./Vault.ts"

/**
 * U+0000 and lone surrogates cannot be stored (PostgreSQL text/jsonb), and NUL cannot reach a
 * shell or environment (C strings): free-text fields that no pattern checks must not hold them.
 */
export const nulProblems = (spec: SessionSpec): Array<{ path: string; message: string }> => {
  const problems: Array<{ path: string; message: string }> = []
  const check = (path: string, value: string) => {
    if (value.includes("\u0000")) problems.push({ path, message: "must not contain NUL (U+0000)" })
    else if (!value.isWellFormed()) problems.push({ path, message: "must be valid Unicode (no lone surrogates)" })
  }
  check(workloadText(spec.workload).path, workloadText(spec.workload).text)
  for (const [name, value] of Object.entries(spec.workload.env ?? {})) check(`workload.env.${name}`, value)
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    check(`metadata.${key}`, key)
    check(`metadata.${key}`, value)
  }
  // A held request must be one the allowlist lets through at all: approval narrows, never widens.
  const allowOut = spec.network?.allowOut ?? []
  for (const [i, rule] of (spec.network?.approvals ?? []).entries()) {
    const parsed = parseEgressRule(rule)
    if (typeof parsed === "string") continue // the schema already refused it
    if (!allowOut.some((p) => p === parsed.host || (!parsed.host.startsWith("*.") && hostMatches(p, parsed.host)))) {
      problems.push({ path: `network.approvals[${i}]`, message: `host ${parsed.host} is not in network.allowOut` })
    }
  }
  const mcpApprovals = (spec.mcp ?? []).some((g) => typeof g !== "string" && (g.approve ?? []).length > 0)
  if (
    spec.network?.approvalTimeoutSeconds !== undefined && (spec.network.approvals ?? []).length === 0 && !mcpApprovals
  ) {
    problems.push({
      path: "network.approvalTimeoutSeconds",
      message: "only applies with network.approvals or mcp tools to approve",
    })
  }
  if (spec.approvalExpiresInMinutes !== undefined && spec.requiresApproval !== true) {
    problems.push({ path: "approvalExpiresInMinutes", message: "only applies with `requiresApproval: true`" })
  }
  return problems
}

/** A daemon invocation: who made the session and the payload for its /input (sealed here, bound to the session). */
export interface Invocation {
  readonly daemon: string
  readonly trigger: SessionTrigger
  readonly input: SessionInput | undefined
}

/** What only control itself sets on a session (never a request body): its daemon origin, its memory. */
export interface InternalOptions {
  readonly origin?: Invocation
  /** /state and LLM history, keyed `daemon:<name>` (see MemoryStore). */
  readonly memory?: SessionMemory
  /** The daemon's own limits (DaemonQuotas), checked in the inserting transaction after the key's and project's. */
  readonly guard?: Effect.Effect<void, RateLimited> | undefined
}

const bothGuards = <E>(a: Effect.Effect<void, E> | undefined, b: Effect.Effect<void, E> | undefined) =>
  a === undefined ? b : b === undefined ? a : Effect.andThen(a, b)

const notFound = (id: string) => new SessionNotFound({ sessionId: id, message: `no session ${id}` })

/**
 * The session use cases behind the API: validation against configured limits, credential
 * values into the vault (the stored spec keeps header names only), queueing, cancel.
 */
export class Sessions extends Context.Service<Sessions, {
  readonly create: (
    spec: SessionSpec,
    principal: Principal,
    idempotencyKey: string | undefined,
    /** Internal only (daemon invocations): never taken from a request body. */
    internal?: InternalOptions,
  ) => Effect.Effect<SessionAccepted, InvalidRequest | IdempotencyConflict | SnapshotUnavailable | RateLimited>
  /** Only a session of `project` is found; others' are as unknown as ids that never existed. */
  readonly cancel: (id: SessionId, project: string) => Effect.Effect<Session, SessionNotFound | IllegalTransition>
}>()("paws/control/Sessions") {
  static readonly layer = Layer.effect(
    Sessions,
    Effect.gen(function* () {
      const { limits } = yield* ControlConfig
      const store = yield* SessionStore
      const vault = yield* Vault
      const signal = yield* QueueSignal
      const feed = yield* EventFeed
      const metrics = yield* Metrics
      const dispatcher = yield* Dispatcher
      const presence = yield* NodePresence
      const mcpServers = yield* McpServers
      const quotas = yield* Quotas
      const projects = yield* Projects
      const approvals = yield* Approvals
      const snapshotProjects = yield* SnapshotProjects

      const create = Effect.fnUntraced(
        function* (
          spec: SessionSpec,
          principal: Principal,
          idempotencyKey: string | undefined,
          internal?: InternalOptions,
        ) {
          const origin = internal?.origin
          const problems = [...sessionSpecProblems(spec, limits), ...nulProblems(spec)]
          const mcpNames = (spec.mcp ?? []).map(grantServer)
          const unknownMcp = new Set(yield* mcpServers.missing(mcpNames))
          mcpNames.forEach((name, i) => {
            if (unknownMcp.has(name)) {
              problems.push({ path: `mcp[${i}]`, message: `no MCP server named ${name} is registered (paws mcp list)` })
            } else if (mcpNames.indexOf(name) !== i) {
              problems.push({ path: `mcp[${i}]`, message: `${name} is listed twice` })
            }
          })
          ;(spec.mcp ?? []).forEach((g, i) => {
            // An approve tool off the grant's allowlist would be refused anyway: say so instead.
            if (typeof g === "string" || g.tools === undefined) return
            g.approve?.forEach((tool, j) => {
              if (!g.tools!.includes(tool)) {
                problems.push({ path: `mcp[${i}].approve[${j}]`, message: `${tool} is not in mcp[${i}].tools` })
              }
            })
          })
          // Only a request valid otherwise asks the database whose snapshot it names.
          if (problems.length === 0) {
            problems.push(...yield* snapshotProjects.problems(spec.snapshot, principal.project, "snapshot"))
          }
          if (problems.length > 0) {
            return yield* new InvalidRequest({
              message: problems.map((p) => `${p.path}: ${p.message}`).join("; "),
              issues: problems,
            })
          }
          const full = withSessionDefaults(spec, limits)
          // Refused now rather than queued forever: the nodes there are cannot run it (a node joining later could).
          const unplaceable = placementProblem(yield* presence.all, {
            snapshot: full.snapshot,
            ...(full.nodeSelector === undefined ? {} : { nodeSelector: full.nodeSelector }),
          })
          if (unplaceable !== undefined) {
            return yield* new SnapshotUnavailable({ snapshot: full.snapshot, message: unplaceable.message })
          }
          const id = newSessionId()
          const creds = full.network.credentials
          const view: SessionSpecView = {
            ...full,
            network: {
              allowOut: full.network.allowOut,
              ...(full.network.approvals === undefined ? {} : { approvals: full.network.approvals }),
              ...(full.network.approvalTimeoutSeconds === undefined
                ? {}
                : { approvalTimeoutSeconds: full.network.approvalTimeoutSeconds }),
              ...(creds === undefined ? {} : {
                credentials: Object.fromEntries(
                  Object.entries(creds).map(([host, rule]) => [host, { headers: Object.keys(rule.headers) }]),
                ),
              }),
            },
          }
          const credentials = creds === undefined || Object.keys(creds).length === 0
            ? null
            : vault.seal(JSON.stringify(creds), id)
          const projectLimits = yield* projects.limitsOf(principal.project)
          const awaiting = spec.requiresApproval === true
          const expiresMinutes = awaiting ? spec.approvalExpiresInMinutes : undefined
          const result = yield* store.create({
            id,
            spec: view,
            credentials,
            keyId: principal.keyId,
            idempotencyKey,
            // Keyed hash: comparing retries must not leave a guessable digest of credential values.
            requestHash: idempotencyKey === undefined ? undefined : vault.fingerprint(JSON.stringify(spec)),
            ...(internal?.memory === undefined ? {} : { memory: internal.memory }),
            origin: origin === undefined ? undefined : {
              daemon: origin.daemon,
              trigger: origin.trigger,
              input: origin.input === undefined ? null : vault.seal(JSON.stringify(origin.input), `${id}:input`),
            },
            project: principal.project,
            status: awaiting ? "awaiting_approval" : "pending",
            approvalExpiresAt: expiresMinutes === undefined
              ? null
              : new Date(Date.now() + expiresMinutes * 60_000).toISOString(),
          }, bothGuards(quotas.sessionGuard(principal, projectLimits), internal?.guard))
          const warnings = credentialWarnings(spec.network)
          const warned = warnings.length === 0 ? {} : { warnings }
          if (!result.created) {
            const existing = yield* store.get(result.id)
            return { sessionId: result.id, status: existing?.status ?? "pending", ...warned }
          }
          metrics.sessionCreated()
          if (awaiting) {
            const created = yield* store.get(id)
            if (created !== undefined) yield* approvals.notifyWaiting(created)
            return { sessionId: id, status: "awaiting_approval" as const, ...warned }
          }
          yield* signal.kick
          return { sessionId: id, status: "pending" as const, ...warned }
        },
      )

      const cancel = Effect.fn("Sessions.cancel")(function* (id: SessionId, project: string) {
        const before = yield* store.get(id)
        if (before === undefined || before.project !== project) return yield* notFound(id)
        const illegal = (from: string) =>
          new IllegalTransition({
            sessionId: id,
            from,
            to: "cancelled",
            message:
              `session ${id} is already ${from}; only awaiting_approval, pending, starting or running sessions can be cancelled`,
          })
        if (isTerminal(before.status)) return yield* illegal(before.status)
        // On a node, the session becomes `cancelled` when the node confirms its VM is gone
        // (Dispatcher.stop waits for that); the transition below covers a node that cannot.
        if (before.node !== null) yield* dispatcher.stop(id, before.node)
        const moved = yield* store.transition(id, "cancelled", "cancelled_by_user")
        const after = yield* store.get(id)
        if (after === undefined) return yield* notFound(id)
        if (!moved && after.status !== "cancelled") return yield* illegal(after.status) // it finished meanwhile
        yield* feed.publish(id)
        // Claimed by a node while we cancelled it: stop it there too.
        if (moved && before.node === null && after.node !== null) yield* dispatcher.stop(id, after.node)
        yield* Effect.logInfo("session cancelled").pipe(Effect.annotateLogs({ session: id, was: before.status }))
        return after
      })

      return Sessions.of({ create, cancel })
    }),
  )
}
