import { Cause, Context, Effect, Layer, Option, Queue, Stream } from "effect"
import {
  newSessionId,
  type SnapshotBuildDispatch,
  type SnapshotBuildEvent,
  SnapshotBuildFailed,
  SnapshotBusy,
  type SnapshotView,
  type UnknownSnapshot,
} from "@paws/core"
import { ImageStore } from "../image/ImageStore.ts"
import { Firewall } from "../network/Firewall.ts"
import { guestNetworkOf, NetworkSlot } from "../network/NetworkSlot.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { ProxyStarter } from "../proxy/ProxyStarter.ts"
import { SnapshotBuilder } from "./SnapshotBuilder.ts"
import type { SnapshotManifest } from "./SnapshotManifest.ts"
import { SnapshotStore } from "./SnapshotStore.ts"
import { setupNetworkCommands } from "./SetupNetwork.ts"

interface Build {
  readonly status: "building" | "failed"
  readonly phase: string
  readonly startedAt: string
  readonly error?: string
  readonly refusedHosts?: ReadonlyArray<string>
}

/** Proxy decisions that mean "the setup script may not go there". */
const refusals = new Set(["denied_host", "dns_refused", "blocked_address", "no_sni", "host_mismatch"])

export const manifestSummary = (m: SnapshotManifest): NonNullable<SnapshotView["manifest"]> => ({
  image: { name: m.image.name, hash: m.image.inputHash },
  memoryMB: m.memoryMB,
  vcpus: m.vcpus,
  accelerator: m.accelerator,
  cmdline: m.cmdline,
  devices: m.devices,
  macPlan: m.macPlan,
  createdAt: m.createdAt,
  buildMs: m.buildMs,
  setupSha256: m.setupSha256,
})

/**
 * The node's snapshots as the control plane sees them: builds (one per name at a time, each in
 * its own network slot; with a setup script, the guest reaches exactly its allowlist through a
 * proxy of its own, like a session), what is stored, and removal. Builds run as long as their
 * event stream: a caller that goes away stops the build.
 */
export class NodeSnapshots extends Context.Service<NodeSnapshots, {
  readonly build: (
    request: SnapshotBuildDispatch,
  ) => Stream.Stream<SnapshotBuildEvent, UnknownSnapshot | SnapshotBusy | SnapshotBuildFailed>
  readonly list: Effect.Effect<ReadonlyArray<SnapshotView>>
  readonly remove: (name: string) => Effect.Effect<boolean, SnapshotBusy>
}>()("paws/node/snapshot/NodeSnapshots") {
  static readonly layerNoDeps = Layer.effect(
    NodeSnapshots,
    Effect.gen(function* () {
      const { id: node } = yield* NodeConfig
      const store = yield* SnapshotStore
      const builder = yield* SnapshotBuilder
      const images = yield* ImageStore
      const slots = yield* NetworkSlot
      const firewall = yield* Firewall
      const proxies = yield* ProxyStarter
      const builds = new Map<string, Build>()

      const busy = (name: string) =>
        new SnapshotBusy({ snapshot: name, message: `snapshot "${name}" is being built; wait for it to finish` })

      const view = (name: string) =>
        store.find(name).pipe(
          Effect.map(Option.map((s): SnapshotView => ({
            name,
            node,
            status: "ready",
            manifest: manifestSummary(s.manifest),
          }))),
        )

      const run = (d: SnapshotBuildDispatch, emit: (e: SnapshotBuildEvent) => void) =>
        Effect.scoped(Effect.gen(function* () {
          const progress = (phase: string, ms: number) => {
            const b = builds.get(d.name)
            if (b !== undefined) builds.set(d.name, { ...b, phase })
            emit({ _tag: "progress", phase, ms })
          }
          const started = Date.now()
          const slot = yield* slots.acquire(newSessionId())
          yield* firewall.isolate(slot)
          // No setup script, no network: the guest stays fully isolated.
          const network = d.setup === undefined ? undefined : yield* proxies.start({
            sessionId: slot.sessionId,
            hostIp: slot.hostIp,
            allowOut: d.network.allowOut,
            credentials: d.network.credentials,
            onAudit: (event) => {
              const b = builds.get(d.name)
              if (!refusals.has(event.decision) || b === undefined || b.refusedHosts?.includes(event.host)) return
              builds.set(d.name, { ...b, refusedHosts: [...b.refusedHosts ?? [], event.host] })
              emit({ _tag: "refused", host: event.host, decision: event.decision })
            },
          }).pipe(
            Effect.tap((p) => firewall.open(slot, p.ports)),
            Effect.map((p) => setupNetworkCommands({ dnsIp: slot.hostIp, caPem: p.caCertificatePem })),
            Effect.tap(() => Effect.sync(() => progress("network", Date.now() - started))),
          )
          return yield* builder.build({
            name: d.name,
            image: d.base,
            ...(d.setup === undefined ? {} : { setup: d.setup }),
            ...(network === undefined ? {} : { beforeSetup: network.before, afterSetup: network.after }),
            memoryMB: d.memoryMB,
            vcpus: d.vcpus,
            net: guestNetworkOf(slot),
            // Times since this build was admitted (the manifest keeps the builder's own).
            onProgress: (phase) => progress(phase, Date.now() - started),
          })
        }))

      const build = (d: SnapshotBuildDispatch) =>
        Stream.callback<SnapshotBuildEvent, UnknownSnapshot | SnapshotBusy | SnapshotBuildFailed>((queue) =>
          Effect.gen(function* () {
            if (builds.get(d.name)?.status === "building") return yield* busy(d.name)
            const before = builds.get(d.name)
            // Claimed before the first yield: a second build of the name is busy from here on.
            builds.set(d.name, { status: "building", phase: "queued", startedAt: new Date().toISOString() })
            yield* images.get(d.base).pipe(
              Effect.tapError(() =>
                Effect.sync(() => before === undefined ? builds.delete(d.name) : builds.set(d.name, before))
              ),
            )
            const emit = (e: SnapshotBuildEvent) => void Queue.offerUnsafe(queue, e)
            // Admitted: the caller may now report the build as accepted.
            emit({ _tag: "progress", phase: "queued", ms: 0 })
            yield* run(d, emit).pipe(
              // Closing the build's scope at the deadline stops its VM and proxy.
              Effect.timeoutOrElse({
                duration: d.timeoutMs,
                orElse: () => Effect.fail(new Error(`the build did not finish within ${d.timeoutMs} ms`)),
              }),
              Effect.flatMap(() => view(d.name)),
              Effect.flatMap(Option.match({
                onNone: () => Effect.fail(new Error("the snapshot was built but is not restorable")),
                onSome: (snapshot) =>
                  Effect.sync(() => {
                    const refused = builds.get(d.name)?.refusedHosts
                    builds.delete(d.name)
                    emit({
                      _tag: "built",
                      snapshot: refused === undefined ? snapshot : { ...snapshot, refusedHosts: refused },
                    })
                  }),
              })),
              Effect.andThen(Queue.end(queue)),
              Effect.catchCause((cause) => {
                const e = Cause.squash(cause) as { message?: string; detail?: string }
                const message = `${e.message ?? String(e)}${e.detail ? `\n${e.detail.slice(-1500)}` : ""}`
                const b = builds.get(d.name)
                builds.set(d.name, {
                  ...b,
                  status: "failed",
                  phase: b?.phase ?? "queued",
                  startedAt: b?.startedAt ?? "",
                  error: message,
                })
                return Effect.logWarning(`snapshot ${d.name} failed: ${message}`).pipe(
                  Effect.andThen(Queue.fail(queue, new SnapshotBuildFailed({ snapshot: d.name, message }))),
                )
              }),
              // Interrupted (the caller went away): the build is simply not running any more.
              Effect.ensuring(Effect.sync(() => {
                if (builds.get(d.name)?.status === "building") builds.delete(d.name)
              })),
              Effect.forkScoped,
            )
          })
        )

      const list = Effect.gen(function* () {
        const out = new Map<string, SnapshotView>()
        for (const { name, manifest } of yield* store.list) {
          const found = yield* Effect.result(store.find(name))
          out.set(name, {
            name,
            node,
            status: found._tag === "Success" ? "ready" : "stale",
            manifest: manifestSummary(manifest),
            ...(found._tag === "Failure" ? { error: found.failure.message } : {}),
          })
        }
        for (const [name, b] of builds) {
          const existing = out.get(name)
          // A failed rebuild leaves the previous snapshot in place: that one still counts.
          if (b.status === "failed" && existing !== undefined) continue
          out.set(name, {
            ...existing,
            name,
            node,
            status: b.status,
            phase: b.phase,
            startedAt: b.startedAt,
            ...(b.refusedHosts === undefined ? {} : { refusedHosts: b.refusedHosts }),
            ...(b.error === undefined ? {} : { error: b.error }),
          })
        }
        return [...out.values()].sort((a, b) => a.name.localeCompare(b.name))
      })

      const remove = (name: string) =>
        Effect.gen(function* () {
          const b = builds.get(name)
          if (b?.status === "building") return yield* busy(name)
          const forgotten = builds.delete(name)
          return (yield* store.remove(name)) || forgotten
        })

      return NodeSnapshots.of({ build, list, remove })
    }),
  )
  static readonly layer = NodeSnapshots.layerNoDeps.pipe(Layer.provide(SnapshotBuilder.layerNoDeps))
}
