import {
  chooseNode,
  credentialWarnings,
  InvalidRequest,
  ServiceUnavailable,
  sessionSpecProblems,
  type SnapshotAccepted,
  SnapshotBusy,
  SnapshotNotFound,
  type SnapshotRequest,
  type SnapshotView,
} from "@paws/core"
import { Context, Deferred, Effect, Layer, Stream } from "effect"
import { ControlConfig } from "./ControlConfig.ts"
import { type NodeEntry, NodeRegistry } from "./NodeRegistry.ts"
import { redactCredentials } from "./RedactCredentials.ts"

/** A build this replica started: in memory only (credentials included), until it ends. */
interface Build {
  readonly node: string
  /** `ready`: finished; the node's view is the truth, this adds what only the build saw (phases, refused hosts). */
  readonly status: "building" | "failed" | "ready"
  readonly phase: string
  readonly phases?: ReadonlyArray<{ readonly phase: string; readonly ms: number }>
  readonly startedAt: string
  readonly error?: string
  readonly refusedHosts?: ReadonlyArray<string>
}

const fieldOf: Record<string, string> = { "workload.script": "setup", "resources.memoryMB": "memoryMB" }

/** Same limits and cross-field rules as a session's spec, named by the request's own fields. */
const requestProblems = (r: SnapshotRequest, limits: ControlConfig["Service"]["limits"]) => {
  const spec = {
    workload: { type: "script" as const, script: r.setup ?? "true" },
    resources: { vcpus: r.vcpus ?? 1, memoryMB: r.memoryMB ?? 64 },
    ...(r.timeoutMs === undefined ? {} : { timeoutMs: r.timeoutMs }),
    ...(r.network === undefined ? {} : { network: r.network }),
  }
  const problems = sessionSpecProblems(spec, limits).map((p) => ({
    path: fieldOf[p.path] ?? (p.path === "resources.vcpus" ? "vcpus" : p.path),
    message: p.message,
  }))
  if (r.setup?.includes("\u0000")) problems.push({ path: "setup", message: "must not contain NUL (U+0000)" })
  return problems
}

const rank = { building: 0, failed: 1, ready: 2, stale: 3 } as const

/**
 * Snapshot builds and the snapshots on nodes. The truth is on the nodes (each lists what it
 * has, and its own running builds); this replica adds the builds it started, with their phase
 * or failure, in memory: nothing here is stored in Postgres, so credentials never rest.
 */
export class Snapshots extends Context.Service<Snapshots, {
  readonly create: (
    r: SnapshotRequest,
  ) => Effect.Effect<SnapshotAccepted, InvalidRequest | SnapshotBusy | ServiceUnavailable>
  readonly list: Effect.Effect<ReadonlyArray<SnapshotView>>
  readonly get: (name: string) => Effect.Effect<SnapshotView, SnapshotNotFound>
  readonly remove: (name: string) => Effect.Effect<void, SnapshotNotFound | SnapshotBusy>
}>()("paws/control/Snapshots") {
  static readonly layer = Layer.effect(
    Snapshots,
    Effect.gen(function* () {
      const { limits } = yield* ControlConfig
      const registry = yield* NodeRegistry
      const scope = yield* Effect.scope
      const builds = new Map<string, Build>()

      const busy = (name: string) =>
        new SnapshotBusy({
          snapshot: name,
          message: `snapshot "${name}" is being built; wait for it (GET /v1/snapshots/${name}) and retry`,
        })
      const invalid = (issues: ReadonlyArray<{ path: string; message: string }>) =>
        new InvalidRequest({ message: issues.map((p) => `${p.path}: ${p.message}`).join("; "), issues })

      const pickNode = Effect.fn(function* (wanted: string | undefined, base: string) {
        const entries = yield* registry.list
        if (wanted !== undefined) {
          const entry = entries.find((e) => e.info.id === wanted)
          if (entry !== undefined) return entry
          return yield* invalid([{
            path: "node",
            message: `no connected node "${wanted}" (connected: ${entries.map((e) => e.info.id).join(", ") || "none"})`,
          }])
        }
        const chosen = chooseNode(entries.map((e) => e.info), { snapshot: base }) ??
          chooseNode(entries.map((e) => e.info)) ?? entries[0]?.info
        const entry = entries.find((e) => e.info.id === chosen?.id)
        if (entry === undefined) {
          return yield* new ServiceUnavailable({
            message: "no node is connected to build on; start one (`paws up` as root, or `paws node`)",
          })
        }
        return entry
      })

      const create = Effect.fn("Snapshots.create")(function* (r: SnapshotRequest) {
        const problems = requestProblems(r, limits)
        if (problems.length > 0) return yield* invalid(problems)
        if (builds.get(r.name)?.status === "building") return yield* busy(r.name)
        const base = r.base ?? "default"
        const entry: NodeEntry = yield* pickNode(r.node, base)
        const node = entry.info.id
        const admitted = yield* Deferred.make<void, InvalidRequest | SnapshotBusy | ServiceUnavailable>()
        const set = (b: Omit<Build, "node" | "startedAt">) => {
          const old = builds.get(r.name)
          builds.set(r.name, { ...old, node, startedAt: old?.startedAt ?? new Date().toISOString(), ...b })
        }
        const redact = (text: string) => redactCredentials(text, r.network?.credentials ?? {})
        const fail = (message: string) =>
          set({ status: "failed", phase: builds.get(r.name)?.phase ?? "queued", error: message })
        builds.delete(r.name) // a failed build of the same name is superseded
        set({ status: "building", phase: "queued" })
        yield* registry.noteSnapshot(node, r.name, "building")
        yield* entry.client.BuildSnapshot({
          name: r.name,
          base,
          ...(r.setup === undefined ? {} : { setup: r.setup }),
          network: { allowOut: r.network?.allowOut ?? [], credentials: r.network?.credentials ?? {} },
          memoryMB: r.memoryMB ?? limits.defaultMemoryMB,
          vcpus: r.vcpus ?? limits.defaultVcpus,
          timeoutMs: r.timeoutMs ?? limits.maxTimeoutMs,
        }).pipe(
          Stream.runForEach((e) =>
            Effect.gen(function* () {
              yield* Deferred.succeed(admitted, undefined)
              const b = builds.get(r.name)
              if (e._tag === "progress") {
                set({ status: "building", phase: e.phase, phases: [...b?.phases ?? [], { phase: e.phase, ms: e.ms }] })
              } else if (e._tag === "refused") {
                set({
                  status: "building",
                  phase: b?.phase ?? "setup",
                  refusedHosts: [...b?.refusedHosts ?? [], e.host],
                })
              } else {
                set({ status: "ready", phase: "ready" })
                yield* registry.noteSnapshot(node, r.name, "ready")
              }
            })
          ),
          Effect.catchTags({
            UnknownSnapshot: (e) =>
              Effect.andThen(
                Effect.sync(() => builds.delete(r.name)),
                Deferred.fail(admitted, invalid([{ path: "base", message: e.message }])),
              ),
            SnapshotBusy: () =>
              Effect.andThen(Effect.sync(() => builds.delete(r.name)), Deferred.fail(admitted, busy(r.name))),
            SnapshotBuildFailed: (e) => Effect.sync(() => fail(redact(e.message))),
            RpcClientError: (e) =>
              Effect.sync(() => fail(redact(`node ${node} was lost during the build: ${e.message}`))),
          }),
          // The error is shown by GET /v1/snapshots: a node's refusal may quote the payload, so redact it.
          Effect.catchCause((cause) =>
            Effect.sync(() => fail(redact(`node ${node} failed the build: ${String(cause)}`)))
          ),
          Effect.ensuring(Deferred.succeed(admitted, undefined)),
          // A build that did not finish leaves nothing to run; the next heartbeat says what the node holds.
          Effect.ensuring(
            Effect.suspend(() =>
              builds.get(r.name)?.status === "ready" ? Effect.void : registry.noteSnapshot(node, r.name, undefined)
            ),
          ),
          Effect.asVoid,
          Effect.forkIn(scope),
        )
        yield* Effect.logInfo("snapshot build").pipe(Effect.annotateLogs({ snapshot: r.name, node, base }))
        // The node admits (or refuses: unknown base, same name building there) before we answer.
        yield* Deferred.await(admitted).pipe(Effect.timeout(30_000), Effect.catchTag("TimeoutError", () => Effect.void))
        const warnings = credentialWarnings(r.network)
        return {
          name: r.name,
          node,
          status: builds.get(r.name)?.status ?? "ready" as const,
          ...(warnings.length === 0 ? {} : { warnings }),
        }
      })

      const fromNodes = Effect.gen(function* () {
        const entries = yield* registry.list
        const lists = yield* Effect.forEach(entries, (e) =>
          e.client.ListSnapshots().pipe(
            Effect.timeout(5_000),
            Effect.catchCause(() => Effect.succeed([] as ReadonlyArray<SnapshotView>)),
          ), { concurrency: "unbounded" })
        return lists.flat()
      })

      const list = Effect.gen(function* () {
        const out = new Map<string, SnapshotView>()
        for (const s of yield* fromNodes) out.set(`${s.name}\u0000${s.node}`, s)
        for (const [name, b] of builds) {
          const key = `${name}\u0000${b.node}`
          const onNode = out.get(key)
          if (b.status !== "ready") out.set(key, { ...onNode, name, ...b })
          // Finished: only while the node still has it (it may have been removed or rebuilt meanwhile).
          else if (onNode !== undefined && onNode.status !== "building") {
            out.set(key, {
              ...onNode,
              ...(b.phases === undefined ? {} : { phases: b.phases }),
              ...(b.refusedHosts === undefined ? {} : { refusedHosts: b.refusedHosts }),
            })
          }
        }
        return [...out.values()].sort((a, b) => a.name.localeCompare(b.name) || a.node.localeCompare(b.node))
      })

      const get = (name: string) =>
        Effect.flatMap(list, (all) => {
          const found = all.filter((s) => s.name === name).sort((a, b) => rank[a.status] - rank[b.status])[0]
          return found === undefined
            ? Effect.fail(
              new SnapshotNotFound({ snapshot: name, message: `no snapshot "${name}" on any connected node` }),
            )
            : Effect.succeed(found)
        })

      const remove = Effect.fn("Snapshots.remove")(function* (name: string) {
        if (builds.get(name)?.status === "building") return yield* busy(name)
        const forgotten = builds.delete(name)
        const removed = yield* Effect.forEach(yield* registry.list, (e) =>
          e.client.DeleteSnapshot({ name }).pipe(
            Effect.tap((r) => r.removed ? registry.noteSnapshot(e.info.id, name, undefined) : Effect.void),
            Effect.map((r) => r.removed),
            Effect.catchTag("SnapshotBusy", () => Effect.fail(busy(name))),
            Effect.catchTag("RpcClientError", () => Effect.succeed(false)),
          ), { concurrency: "unbounded" })
        if (!forgotten && !removed.some((r) => r)) {
          return yield* new SnapshotNotFound({ snapshot: name, message: `no snapshot "${name}" on any connected node` })
        }
      })

      return Snapshots.of({ create, list, get, remove })
    }),
  )
}
