import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { randomBytes } from "node:crypto"
import { Vmm, VmStartError } from "../vmm/Vmm.ts"
import type { VmHandle } from "../vmm/Vmm.ts"
import { agentRun } from "../guest/AgentShell.ts"
import { caBundlePath } from "../guest/GuestSetup.ts"
import { connectGuestAgent } from "../guest/GuestAgent.ts"
import type { GuestAgent } from "../guest/GuestAgent.ts"
import type { Snapshot } from "./SnapshotManifest.ts"

/** Where a clone runs: its VM id (run dir, QEMU name) and an existing TAP. Fixed at load. */
export interface LoadTarget {
  readonly sessionId: string
  readonly tap: string
}

/** The clone's own addresses, applied by the guest agent at resume (a snapshot carries its source's). */
export interface GuestNetwork {
  readonly guestCidr: string
  readonly gateway: string
  readonly dns: string
}

/** The clone's own network: a new slot; the MACs are the snapshot's (fixed per slot anyway). */
export interface RestoreTarget extends LoadTarget, GuestNetwork {}

/** ms since resume began: running again (`cont`), guest refreshed (clock, CRNG, address). */
export interface ResumeTimings {
  readonly resumed: number
  readonly refreshed: number
}

/**
 * A clone with its device state loaded and still paused: no guest code has run since the
 * snapshot (or only `warm`'s, which gives it its own slot's address, a clock and entropy of its
 * own), so it has learned nothing another clone or its taker shares that `resume` must undo.
 */
export interface LoadedVm {
  readonly vm: VmHandle
  readonly agent: GuestAgent
  /** False once QEMU has exited (a paused clone can still die, e.g. killed). */
  readonly running: () => boolean
  /** ms since load began: QEMU up (QMP), state loaded (paused). */
  readonly timings: { readonly qmp: number; readonly loaded: number }
  /**
   * `cont`, then the guest agent sets the clock, reseeds the CRNG with entropy drawn now and moves
   * the guest to `network`, before anything else runs. Once per clone; a second call fails.
   */
  readonly resume: (network: GuestNetwork) => Effect.Effect<ResumeTimings, VmStartError>
  /**
   * For a clone that will wait in a pool: runs it briefly (its table isolated) for one batch of
   * agent writes and one start shaped like a workload's, then pauses it again. Under TCG a resumed guest's first processes are
   * slow while QEMU translates their code; that translation stays in this QEMU process, so the
   * session's own prepare and workload start warm. The clone moves to its pool slot's `network`
   * here (the slot is its own and goes with it to the taker), with a clock and a reseed of its own;
   * `resume` on the same network then only sets the clock and reseeds again with entropy drawn at
   * hand-out, so nothing a taker relies on is shared or stale.
   */
  readonly warm: (network: GuestNetwork) => Effect.Effect<void, VmStartError>
}

export interface RestoredVm {
  readonly vm: VmHandle
  readonly agent: GuestAgent
  /** ms since restore began: QEMU up (QMP), state loaded (paused), resumed, guest refreshed. */
  readonly timings: {
    readonly qmp: number
    readonly loaded: number
    readonly resumed: number
    readonly refreshed: number
  }
}

const agentTimeoutMs = 10_000

export class SnapshotRestore extends Context.Service<SnapshotRestore, {
  /**
   * Starts a clone of `snapshot` in the scope, up to "state loaded, paused": copy-on-write disk
   * over the snapshot's, RAM mapped privately from its file (nothing copied), device state loaded,
   * guest agent connected. Everything (QEMU, overlay, run dir) is released with the scope.
   */
  readonly load: (snapshot: Snapshot, target: LoadTarget) => Effect.Effect<LoadedVm, VmStartError, Scope.Scope>
  /** `load` then `resume` on the target's network: a running clone with fresh clock, entropy and address. */
  readonly restore: (snapshot: Snapshot, target: RestoreTarget) => Effect.Effect<RestoredVm, VmStartError, Scope.Scope>
}>()("paws/snapshot/SnapshotRestore") {
  static readonly layerNoDeps = Layer.effect(
    SnapshotRestore,
    Effect.gen(function* () {
      const vmm = yield* Vmm
      const load = Effect.fn("SnapshotRestore.load")(function* (snapshot: Snapshot, target: LoadTarget) {
        const m = snapshot.manifest
        const since = (t: number) => Math.round((performance.now() - t) * 10) / 10
        const fail = (message: string) => new VmStartError({ sessionId: target.sessionId, message })
        const machine = yield* vmm.restore({
          sessionId: target.sessionId,
          tap: target.tap,
          spec: {
            accelerator: m.accelerator,
            memoryMB: m.memoryMB,
            vcpus: m.vcpus,
            kernelPath: snapshot.image.kernelPath,
            initrdPath: snapshot.image.initrdPath,
            cmdline: m.cmdline,
            guestMac: m.macPlan.guestMac,
          },
          diskPath: snapshot.diskPath,
          ramPath: snapshot.ramPath,
          statePath: snapshot.statePath,
        }, (controlPath) => connectGuestAgent(controlPath).pipe(Effect.mapError((e) => fail(e.message))))
        const { vm, attached: agent, diagnose: orDiagnose } = machine
        let resumed = false
        /** The network `warm` moved the guest to: a resume on the same one leaves the address be. */
        let addressed: string | undefined
        const networkOf = (n: GuestNetwork) => `${n.guestCidr} ${n.gateway} ${n.dns}`
        /** The agent's `restore`: clock and entropy drawn now, and the address unless it is already `network`'s. */
        const refresh = (network: GuestNetwork) =>
          Effect.gen(function* () {
            const seed = randomBytes(64).toString("hex")
            const epochNs = BigInt(Date.now()) * 1_000_000n
            const net = addressed === networkOf(network) ? "" : ` ${networkOf(network)}`
            const reply = yield* orDiagnose(agent.request(`restore ${epochNs} ${seed}${net}`, agentTimeoutMs))
            if (reply !== "ok") return yield* machine.fail(`guest refresh failed: ${reply}`)
          })
        const resume = (network: GuestNetwork) =>
          Effect.gen(function* () {
            if (resumed) return yield* fail("this clone was already resumed")
            resumed = true
            const t1 = performance.now()
            yield* machine.cont
            const resumedAt = since(t1)
            // Drawn now, never at load: a pooled clone waits paused and must share nothing with others.
            yield* refresh(network)
            return { resumed: resumedAt, refreshed: since(t1) }
          }).pipe(Effect.withSpan("SnapshotRestore.resume"))
        const warm = (network: GuestNetwork) =>
          Effect.gen(function* () {
            if (resumed) return yield* fail("this clone was already resumed")
            yield* machine.cont
            yield* refresh(network)
            addressed = networkOf(network)
            // The shape of a session's start: a batch of writes (on the root disk, as a prepare's
            // are, and removed again), then runWorkloadCommand's path (source an env file, exec sh
            // on a script file, a pipeline's fork and exec).
            yield* orDiagnose(agent.batch([
              { _tag: "mkdir", path: "/var/tmp/paws-warm" },
              { _tag: "write", path: "/var/tmp/paws-warm/f", contents: "warm\n", mode: 0o600 },
              { _tag: "write", path: "/var/tmp/paws-warm/f", contents: "warm\n", append: true },
              { _tag: "write", path: "/run/paws/warm-env.sh", contents: "export PAWS_WARM=1\n" },
              {
                _tag: "write",
                path: "/run/paws/warm.sh",
                // and the files a prepare appends to or reads into this clone's page cache
                contents: `rm -r /var/tmp/paws-warm\ncat ${caBundlePath} /etc/profile >/dev/null 2>&1\n` +
                  'echo "$PAWS_WARM" | tr 1 w\necho arm\n',
              },
            ]))
            const out = yield* orDiagnose(
              agentRun(
                agent,
                ". /run/paws/warm-env.sh && cd /root 2>/dev/null; exec sh /run/paws/warm.sh",
                agentTimeoutMs,
              ),
            )
            if (out.output !== "w\narm") return yield* fail(`warm-up exec answered ${JSON.stringify(out)}`)
            yield* machine.stop
          }).pipe(Effect.withSpan("SnapshotRestore.warm"))
        const loaded: LoadedVm = {
          vm,
          agent,
          running: machine.running,
          timings: machine.timings,
          resume,
          warm,
        }
        return loaded
      })

      const restore = Effect.fn("SnapshotRestore.restore")(function* (snapshot: Snapshot, target: RestoreTarget) {
        const loaded = yield* load(snapshot, target)
        const { loaded: loadedAt } = loaded.timings
        const r = yield* loaded.resume(target)
        const timings = { ...loaded.timings, resumed: loadedAt + r.resumed, refreshed: loadedAt + r.refreshed }
        return { vm: loaded.vm, agent: loaded.agent, timings }
      })
      return SnapshotRestore.of({ load, restore })
    }),
  )
}
