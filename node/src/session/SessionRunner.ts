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
import { collectState, restoreMemory } from "./StateVolume.ts"
import type { SessionContext } from "./SessionSteps.ts"

export { SessionStepFailed } from "./SessionSteps.ts"

/** A running session's guest as exec, files and exposed ports reach it. */
export interface LiveGuestChannel {
  readonly shell: GuestShell
  readonly guestIp: string
}

interface Outcome {
  readonly status: Extract<SessionStatus, "completed" | "failed" | "timeout" | "cancelled">
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

      const run = Effect.fn("SessionRunner.run")(function* (
        dispatch: SessionDispatch,
        emit: (event: NodeSessionEvent) => void,
        cancel: Deferred.Deferred<void>,
        egress: SessionContext["egress"] = {},
        onGuest?: (sessionId: string, guest: LiveGuestChannel) => Effect.Effect<void, never, Scope.Scope>,
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
        /** The session's path: each step acquires in this scope, and closing it releases in reverse. */
        const lifecycle = Effect.gen(function* () {
          const placement = yield* steps.place(c)
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
          if (memory !== undefined) yield* restoreMemory(shell, memory, watch)
          if (onGuest !== undefined) yield* onGuest(dispatch.sessionId, { shell, guestIp: slot.guestIp })
          status("running")
          const began = Date.now()
          // A live session (interactive, or a keepAlive script once done) stays up until it is
          // cancelled (raced below) or its timeout, counted from when it began running.
          const keepUp = Effect.suspend(() => Effect.sleep(Math.max(0, began + dispatch.timeoutMs - Date.now()))).pipe(
            Effect.raceFirst(watch.vmDied),
            Effect.raceFirst(watch.proxyDied),
            Effect.tap(() => c.mark("kept-alive")),
          )
          if (dispatch.workload.type === "interactive") {
            yield* keepUp
            return { status: "completed", exitCode: null, output: null } satisfies Outcome
          }
          const exitCode = yield* steps.workload(c, shell, watch, { stdout, stderr, live })
          if (Option.isNone(exitCode)) {
            // Closing the scope kills the VM; the session is over at the deadline.
            const error = `timed out after ${dispatch.timeoutMs} ms`
            return { status: "timeout", exitCode: null, output: null, error } satisfies Outcome
          }
          const result = yield* collectResult(shell, config.resultCapBytes, watch)
          const done: Outcome["status"] = exitCode.value === 0 ? "completed" : "failed"
          // /state is saved only after a clean exit: a failed run must not replace the last good state.
          let outcome: Outcome = { status: done, exitCode: exitCode.value, ...result }
          if (memory !== undefined && exitCode.value === 0) {
            const saved = yield* collectState(shell, memory.stateMaxBytes, watch)
            if (saved._tag === "saved") emit({ _tag: "state", tar: saved.tar })
            else if (result.error === undefined) {
              outcome = { status: done, exitCode: 0, output: result.output, error: saved.note }
            }
          }
          if (keepsAlive(dispatch.workload)) {
            // Cancelled while kept alive: the session is cancelled, its script's result kept.
            scriptDone = outcome
            yield* keepUp
          }
          return outcome
        })

        status("starting")
        const outcome: Outcome = yield* Effect.scoped(lifecycle).pipe(
          Effect.raceFirst(
            Deferred.await(cancel).pipe(Effect.map((): Outcome => ({
              status: "cancelled",
              exitCode: scriptDone?.exitCode ?? null,
              output: scriptDone?.output ?? null,
            }))),
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
