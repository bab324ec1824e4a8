import { Cause, Context, Deferred, Effect, Fiber, Layer, Option } from "effect"
import {
  keepsAlive,
  type NodeSessionEvent,
  type SessionDispatch,
  type SessionResult,
  type SessionStatus,
} from "@paws/core"
import type { Scope } from "effect"
import type { GuestShell } from "../guest/GuestShell.ts"
import { NetnsDialer } from "../guest/NetnsDialer.ts"
import { NodeSshKey } from "../guest/NodeSshKey.ts"
import { OutputCap } from "../guest/OutputCap.ts"
import { ImageStore } from "../image/ImageStore.ts"
import { Firewall } from "../network/Firewall.ts"
import { NetworkSlot } from "../network/NetworkSlot.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { ProxyStarter } from "../proxy/ProxyStarter.ts"
import { SnapshotRestore } from "../snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import { Vmm } from "../vmm/Vmm.ts"
import { WarmVmPool } from "../warm/WarmVmPool.ts"
import { LiveOutput } from "./LiveOutput.ts"
import { collectResult } from "./ResultCollect.ts"
import { makeSessionSteps } from "./SessionSteps.ts"
import { workloadEndError } from "./WorkloadEnd.ts"
import { collectState, restoreMemory } from "./StateVolume.ts"
import type { Placement, SessionContext } from "./SessionSteps.ts"
import { dataDirConfig } from "../image/GuestImage.ts"
import * as path from "node:path"
import { makePausedVms } from "./PausedVms.ts"
import type { PausedManifest } from "./PausedVms.ts"
import { keepUpUntil } from "./SessionPauses.ts"
import { makeStartTurns } from "./StartTurns.ts"
import type { PauseHolder } from "./SessionPauses.ts"
import type { Snapshot } from "../snapshot/SnapshotManifest.ts"

export { SessionStepFailed } from "./SessionSteps.ts"

/** A running session's guest as exec, files and exposed ports reach it. */
export interface LiveGuestChannel {
  readonly shell: GuestShell
  readonly guestIp: string
}

interface Outcome {
  readonly status: Extract<SessionStatus, "completed" | "failed" | "timeout" | "cancelled" | "paused">
  readonly exitCode: number | null
  readonly output: unknown
  readonly error?: string
}

const nowIso = (): string => new Date().toISOString()

const failedWith = (cause: Cause.Cause<unknown>): Outcome => {
  const error = Cause.squash(cause)
  return {
    status: "failed",
    exitCode: null,
    output: null,
    error: error instanceof Error ? error.message : String(error),
  }
}

/** Runs one session to its end, emitting every event; returns once everything is released. */
export class SessionRunner extends Context.Service<SessionRunner, {
  readonly run: (
    dispatch: SessionDispatch,
    emit: (event: NodeSessionEvent) => void,
    cancel: Deferred.Deferred<void>,
    egress?: SessionContext["egress"],
    /** Called once the guest is prepared, in the VM's scope: its channel, for exec and files. */
    onGuest?: (sessionId: string, guest: LiveGuestChannel) => Effect.Effect<void, never, Scope.Scope>,
    /** Set while the session may be paused; `lastActive` feeds the idle auto-pause. */
    pause?: { readonly holder: PauseHolder; readonly lastActive: () => number },
    /** Set when the node stops: a cancel then ends the session `failed` with this reason. */
    stopReason?: () => string | undefined,
  ) => Effect.Effect<void>
}>()("paws/node/session/SessionRunner") {
  static readonly layerNoDeps = Layer.effect(
    SessionRunner,
    Effect.gen(function* () {
      const config = yield* NodeConfig
      const steps = makeSessionSteps({
        images: yield* ImageStore,
        slots: yield* NetworkSlot,
        proxies: yield* ProxyStarter,
        firewall: yield* Firewall,
        vmm: yield* Vmm,
        dialer: yield* NetnsDialer,
        key: yield* NodeSshKey,
        // Optional: a node without snapshot services cold-boots every session; without a VM pool it restores.
        snapshots: yield* Effect.serviceOption(SnapshotStore),
        restorer: yield* Effect.serviceOption(SnapshotRestore),
        warmVms: yield* Effect.serviceOption(WarmVmPool),
      })
      const snapshots = yield* Effect.serviceOption(SnapshotStore)
      const turns = yield* makeStartTurns(config.maxStarting)
      const paused = makePausedVms(path.resolve(yield* dataDirConfig, "paused"))
      /** A paused session's VM as a restore sees it, and the snapshot its disk backs onto. */
      const resumable = (sessionId: string) =>
        Effect.gen(function* () {
          const manifest = yield* paused.read(sessionId)
          if (manifest === undefined) return yield* Effect.fail(new Error(`no paused VM of session ${sessionId} here`))
          const base = Option.isSome(snapshots) ? yield* snapshots.value.find(manifest.snapshot) : Option.none()
          if (Option.isNone(base) || base.value.manifest.createdAt !== manifest.snapshotCreatedAt) {
            return yield* Effect.fail(
              new Error(`snapshot "${manifest.snapshot}" that the paused VM backs onto was removed or rebuilt`),
            )
          }
          const placement: Placement = {
            image: base.value.image,
            snapshot: Option.some(paused.asSnapshot(base.value, sessionId)),
            pooled: Option.none(),
          }
          return { manifest, base: base.value, placement }
        })

      const run = Effect.fn("SessionRunner.run")(function* (
        dispatch: SessionDispatch,
        emit: (event: NodeSessionEvent) => void,
        cancel: Deferred.Deferred<void>,
        egress: SessionContext["egress"] = {},
        onGuest?: (sessionId: string, guest: LiveGuestChannel) => Effect.Effect<void, never, Scope.Scope>,
        pause: { readonly holder: PauseHolder; readonly lastActive: () => number } = {
          holder: {},
          lastActive: Date.now,
        },
        stopReason: () => string | undefined = () => undefined,
      ) {
        const stdout = new OutputCap(config.outputCapBytes)
        const stderr = new OutputCap(config.outputCapBytes)
        const live = new LiveOutput((stream, data) => emit({ _tag: "output", stream, data }))
        const status = (s: SessionStatus, reason?: string) =>
          emit({ _tag: "status", status: s, at: nowIso(), ...(reason === undefined ? {} : { reason }) })
        // Step timings (ms since start), logged at the end: where a session's time goes.
        const t0 = Date.now()
        const marks: Array<string> = []
        const c: SessionContext = {
          dispatch,
          emit,
          egress,
          mark: (step) => Effect.sync(() => void marks.push(`${step}=${Date.now() - t0}`)),
        }

        /** A keepAlive script's outcome, once it has finished and its VM is kept up. */
        let scriptDone: Outcome | undefined
        /** While the script runs it holds the agent's channel: live exec and files go over SSH meanwhile. */
        let workloadRunning = false
        /** Whether the session got to `running` in this run (a resume that did not keeps its saved VM). */
        let wasRunning = false
        /** The session's path: each step acquires in this scope, and closing it releases in reverse. */
        const lifecycle = Effect.gen(function* () {
          const turnDone = yield* turns.take
          yield* c.mark("turn")
          const resumed = dispatch.resume === true ? yield* resumable(dispatch.sessionId) : undefined
          const placement = resumed?.placement ?? (yield* steps.place(c))
          const slot = yield* steps.slot(c, placement)
          // The proxy and the VM start side by side: neither needs the other until the guest is
          // prepared with the proxy's CA. The firewall opens to the proxy meanwhile (forked as soon
          // as its ports are known) and is joined before anything in the guest may use the network.
          const [[proxy, opened], started] = yield* Effect.all([
            steps.proxy(c, slot).pipe(
              Effect.flatMap((p) => Effect.forkScoped(steps.open(c, slot, p)).pipe(Effect.map((f) => [p, f] as const))),
            ),
            steps.vm(c, slot, placement),
          ], { concurrency: 2 })
          const watch = steps.watch(started.vm, proxy)
          const shell = yield* steps.guest(c, slot, placement, proxy, started, watch)
          yield* Fiber.join(opened)
          const memory = dispatch.memory
          if (memory !== undefined && resumed === undefined) yield* restoreMemory(shell, memory, watch)
          if (onGuest !== undefined) {
            const liveShell = yield* steps.live(slot, placement, started, shell, () => workloadRunning)
            yield* onGuest(dispatch.sessionId, { shell: liveShell, guestIp: slot.guestIp })
          }
          status("running")
          wasRunning = true
          yield* turnDone
          const began = Date.now()
          const usedBefore = resumed?.manifest.usedMs ?? 0
          // The snapshot a pause's disk backs onto: the one the VM was cloned from.
          const base: Snapshot | undefined = resumed?.base ?? Option.getOrUndefined(placement.snapshot)
          // A live session (interactive, or a keepAlive script once done) stays up until it is
          // cancelled (raced outside), its running time is spent (paused time does not count), or
          // it is paused: its VM saved to this node's disk, then everything released.
          const keepUp = (script?: PausedManifest["script"]) =>
            Effect.scoped(keepUpUntil({
              holder: pause.holder,
              sessionId: dispatch.sessionId,
              deadline: began + dispatch.timeoutMs - usedBefore,
              died: Effect.raceFirst(watch.vmDied, watch.proxyDied),
              save: base === undefined || started.agent === undefined
                ? "its VM was cold-booted (no snapshot to restore it through); only restored VMs can be paused"
                : paused.save(started.vm, base, {
                  sessionId: dispatch.sessionId,
                  snapshot: base.name,
                  snapshotCreatedAt: base.manifest.createdAt,
                  pausedAt: nowIso(),
                  usedMs: usedBefore + Date.now() - began,
                  ...(script === undefined ? {} : { script }),
                }),
              cont: started.vm.qmp("cont").pipe(Effect.ignore),
              idleMs: config.idlePauseSeconds * 1000,
              lastActive: pause.lastActive,
            })).pipe(Effect.tap(() => c.mark("kept-alive")))
          const pausedOutcome: Outcome = { status: "paused", exitCode: null, output: null }
          if (resumed !== undefined) {
            // Resumed: the script (if any) ended before the first pause; its outcome ends the session.
            const script = resumed.manifest.script
            if ((yield* keepUp(script)) === "paused") return pausedOutcome
            return { status: script?.status ?? "completed", exitCode: script?.exitCode ?? null, output: null }
          }
          if (dispatch.workload.type === "interactive") {
            if ((yield* keepUp()) === "paused") return pausedOutcome
            return { status: "completed", exitCode: null, output: null } satisfies Outcome
          }
          workloadRunning = true
          const ended = yield* steps.workload(c, shell, watch, { stdout, stderr, live }).pipe(
            Effect.ensuring(Effect.sync(() => void (workloadRunning = false))),
          )
          if (Option.isNone(ended)) {
            // Closing the scope kills the VM; the session is over at the deadline.
            const error = `timed out after ${dispatch.timeoutMs} ms`
            return { status: "timeout", exitCode: null, output: null, error } satisfies Outcome
          }
          const exitCode = ended.value.exitCode
          const result = yield* collectResult(shell, config.resultCapBytes, watch)
          const done: Outcome["status"] = exitCode === 0 ? "completed" : "failed"
          // A signal (the guest's OOM killer, a kill) is named: "exit code null" would say nothing.
          const why = workloadEndError(ended.value)
          const error = why === undefined ? result.error : result.error === undefined ? why : `${why}; ${result.error}`
          // /state is saved only after a clean exit: a failed run must not replace the last good state.
          let outcome: Outcome = { status: done, exitCode, ...result, ...(error === undefined ? {} : { error }) }
          if (memory !== undefined && exitCode === 0) {
            const saved = yield* collectState(shell, memory.stateMaxBytes, watch)
            if (saved._tag === "saved") emit({ _tag: "state", tar: saved.tar })
            else if (result.error === undefined) {
              outcome = { status: done, exitCode: 0, output: result.output, error: saved.note }
            }
          }
          if (keepsAlive(dispatch.workload)) {
            // Cancelled while kept alive: the session is cancelled, its script's result kept.
            scriptDone = outcome
            const script = { status: done, exitCode }
            if ((yield* keepUp(script)) === "paused") return pausedOutcome
          }
          return outcome
        })

        status("starting")
        const outcome: Outcome = yield* Effect.scoped(lifecycle).pipe(
          Effect.raceFirst(
            Deferred.await(cancel).pipe(Effect.map((): Outcome => {
              const stopped = stopReason()
              return stopped === undefined
                ? { status: "cancelled", exitCode: scriptDone?.exitCode ?? null, output: scriptDone?.output ?? null }
                : { status: "failed", exitCode: null, output: scriptDone?.output ?? null, error: stopped }
            })),
          ),
          Effect.catchCause((cause) => Effect.succeed(failedWith(cause))),
          // Stopped from outside (its control link dropped): still one line in the node's record of what it ran.
          Effect.onInterrupt(() => Effect.logInfo(`session ${dispatch.sessionId} interrupted: ${marks.join(" ")}`)),
        )
        yield* c.mark("released")
        yield* Effect.logInfo(`session ${dispatch.sessionId} ${outcome.status}: ${marks.join(" ")}`)
        live.end()
        stdout.end()
        stderr.end()
        if (outcome.status === "paused") return status("paused")
        if (dispatch.resume === true && !wasRunning && outcome.status !== "cancelled") {
          // The resume failed before the VM ran on (e.g. no slot, proxy or restore failure): the saved
          // VM is kept and the session stays paused, to be resumed again (control ignores this repeat).
          yield* Effect.logWarning(`session ${dispatch.sessionId}: resume failed, still paused: ${outcome.error}`)
          return status("paused", `resume failed: ${outcome.error}`)
        }
        // Over: its saved VM (a resumed session's disk backed onto it until now) goes too.
        yield* paused.remove(dispatch.sessionId)
        // A resumed session's result was recorded before its first pause; an error is news though.
        if (dispatch.resume === true && outcome.error === undefined) {
          return status(outcome.status)
        }
        const result: SessionResult = {
          exitCode: outcome.exitCode,
          stdout: stdout.text,
          stderr: stderr.text,
          output: (outcome.output ?? null) as SessionResult["output"],
          truncated: stdout.truncated || stderr.truncated,
          ...(outcome.error === undefined ? {} : { error: outcome.error }),
        }
        emit({ _tag: "result", result })
        status(
          outcome.status,
          outcome.status === "failed" && outcome.error === undefined ? `exit code ${outcome.exitCode}` : outcome.error,
        )
      })
      return SessionRunner.of({ run })
    }),
  )
}
