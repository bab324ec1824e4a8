import { Cause, Context, Data, Deferred, Effect, Layer, Option, Stream } from "effect"
import type { SessionDispatch, SessionEvent, SessionResult, SessionStatus } from "@paws/core"
import { connectGuestShell } from "../guest/GuestShell.ts"
import { NetnsDialer } from "../guest/NetnsDialer.ts"
import { NodeSshKey } from "../guest/NodeSshKey.ts"
import { ImageStore } from "../image/ImageStore.ts"
import { Firewall } from "../network/Firewall.ts"
import { NetworkSlot } from "../network/NetworkSlot.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { ProxySupervisor } from "../proxy/ProxySupervisor.ts"
import { Vmm } from "../vmm/Vmm.ts"
import type { VmHandle } from "../vmm/Vmm.ts"
import { chooseSnapshot } from "../snapshot/SnapshotChoice.ts"
import { ProxyPool } from "../pool/ProxyPool.ts"
import { VmPool } from "../pool/VmPool.ts"
import { prepareViaAgent } from "../snapshot/AgentPrepare.ts"
import { agentShell } from "../snapshot/GuestAgent.ts"
import type { GuestAgent } from "../snapshot/GuestAgent.ts"
import { SnapshotRestore } from "../snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import {
  envFile,
  envPath,
  maxInlineCommandBytes,
  prepareGuestCommand,
  resultPath,
  runWorkloadCommand,
} from "./GuestSetup.ts"
import { guestWorkload } from "./AgentWorkload.ts"
import { LiveOutput } from "./LiveOutput.ts"
import { OutputCap } from "./OutputCap.ts"

export class SessionStepFailed extends Data.TaggedError("SessionStepFailed")<{ readonly message: string }> {}

interface Outcome {
  readonly status: Extract<SessionStatus, "completed" | "failed" | "timeout" | "cancelled">
  readonly exitCode: number | null
  readonly output: unknown
  readonly error?: string
}

/** A running VM; restored ones come with their connected agent (SnapshotRestore, later a pool). */
interface StartedVm {
  readonly vm: VmHandle
  readonly agent?: GuestAgent
}

const sshReadyTimeoutMs = 60_000
/** Reading result.json (at most resultCapBytes) takes well under a second even under TCG. */
const resultReadTimeoutMs = 10_000
const nowIso = (): string => new Date().toISOString()

/** Runs one session to its end, emitting every event; returns once everything is released. */
export class SessionRunner extends Context.Service<SessionRunner, {
  readonly run: (
    dispatch: SessionDispatch,
    emit: (event: SessionEvent) => void,
    cancel: Deferred.Deferred<void>,
  ) => Effect.Effect<void>
}>()("paws/node/session/SessionRunner") {
  static readonly layerNoDeps = Layer.effect(
    SessionRunner,
    Effect.gen(function* () {
      const config = yield* NodeConfig
      const images = yield* ImageStore
      const slots = yield* NetworkSlot
      const proxies = yield* ProxySupervisor
      const firewall = yield* Firewall
      const vmm = yield* Vmm
      const dialer = yield* NetnsDialer
      const key = yield* NodeSshKey
      // Optional: a node without snapshot services cold-boots every session.
      const snapshots = yield* Effect.serviceOption(SnapshotStore)
      const restorer = yield* Effect.serviceOption(SnapshotRestore)
      // Warm proxies when the node keeps a pool (same contract as ProxySupervisor.start).
      const proxyPool = yield* Effect.serviceOption(ProxyPool)
      const startProxy = Option.isSome(proxyPool) ? proxyPool.value.start : proxies.start
      // Warm clones (loaded, paused, in an isolated slot) when the node keeps a VM pool.
      const vmPool = yield* Effect.serviceOption(VmPool)

      const run = Effect.fn("SessionRunner.run")(function* (
        dispatch: SessionDispatch,
        emit: (event: SessionEvent) => void,
        cancel: Deferred.Deferred<void>,
      ) {
        const id = dispatch.sessionId
        const stdout = new OutputCap(config.outputCapBytes)
        const stderr = new OutputCap(config.outputCapBytes)
        const live = new LiveOutput((stream, data) => emit({ _tag: "output", stream, data }))
        const status = (s: SessionStatus, reason?: string) =>
          emit({ _tag: "status", status: s, at: nowIso(), ...(reason === undefined ? {} : { reason }) })
        const fail = (message: string) => new SessionStepFailed({ message })
        // Step timings (ms since start), logged at the end: where a session's time goes.
        const t0 = Date.now()
        const marks: Array<string> = []
        const mark = (step: string) => Effect.sync(() => void marks.push(`${step}=${Date.now() - t0}`))

        /** Every step is an acquire/release pair in this scope; closing it tears down in reverse. */
        const lifecycle = Effect.gen(function* () {
          const snapshot = yield* chooseSnapshot(snapshots, images, dispatch.snapshot, dispatch.resources)
          const image = Option.isSome(snapshot) ? snapshot.value.image : yield* images.get(dispatch.snapshot)
          // A warm clone comes with its slot, its table already installed (isolated); it is resumed
          // and refreshed (clock, entropy, address) only now, for this session.
          const pooled = Option.isSome(snapshot) && Option.isSome(vmPool)
            ? yield* vmPool.value.take(snapshot.value.name, dispatch.resources)
            : Option.none()
          const slot = Option.isSome(pooled) ? pooled.value.slot : yield* slots.acquire(id)
          yield* mark(Option.isSome(pooled) ? "slot(pooled)" : "slot")
          // The guest is isolated before it exists; the proxy starts while the VM boots, and the
          // firewall opens to the proxy as soon as its ports are known.
          if (Option.isNone(pooled)) yield* firewall.isolate(slot)
          const [proxy, started] = yield* Effect.all([
            startProxy({
              sessionId: id,
              hostIp: slot.hostIp,
              allowOut: dispatch.network.allowOut,
              credentials: dispatch.network.credentials,
              onAudit: (event) => emit({ _tag: "audit", event }),
            }).pipe(
              Effect.tap(() => mark("proxy")),
              Effect.tap((p) => firewall.open(slot, p.ports)),
              Effect.tap(() => mark("firewall")),
            ),
            Option.isSome(pooled)
              ? pooled.value.resume.pipe(Effect.map((r): StartedVm => ({ vm: r.vm, agent: r.agent })))
              : Option.isSome(snapshot) && Option.isSome(restorer)
              ? restorer.value.restore(snapshot.value, {
                sessionId: id,
                tap: slot.tap,
                guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
                gateway: slot.hostIp,
                dns: slot.hostIp,
              })
              : vmm.boot({
                sessionId: id,
                image,
                tap: slot.tap,
                guestMac: slot.guestMac,
                guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
                gateway: slot.hostIp,
                dns: slot.hostIp,
                vcpus: dispatch.resources.vcpus,
                memoryMB: dispatch.resources.memoryMB,
              }).pipe(Effect.map((vm): StartedVm => ({ vm }))),
          ], { concurrency: 2 })
          const vm = started.vm
          yield* mark(started.agent === undefined ? "vm" : "vm(restored)")
          const vmDied = vm.exited.pipe(
            Effect.flatMap((code) => Effect.fail(fail(`VM exited (${code}) unexpectedly`))),
          )
          const proxyDied = Deferred.await(proxy.exited).pipe(
            Effect.flatMap((code) => Effect.fail(fail(`proxy exited (${code}) unexpectedly`))),
          )
          // an agent workload becomes the script that runs the agent (AgentWorkload.ts)
          const workload = guestWorkload(dispatch.workload, dispatch.sessionId)
          const env = envFile(workload.env)
          // The guest's command channel, and the guest prepared over it (clock, DNS, CA, env file,
          // script). A restored VM: its agent (virtio-serial, connected and refreshed by the
          // restore) writes the files itself, and SSH is never dialled. A cold-booted VM has no
          // agent: SSH once its dropbear is up, then one prepare command.
          const restoredGuest = (restored: { readonly vm: VmHandle; readonly agent: GuestAgent }) =>
            prepareViaAgent(restored.agent, {
              caPem: proxy.caCertificatePem,
              env,
              script: workload.script,
            }).pipe(
              Effect.mapError((e) => fail(`preparing the guest failed: ${e.message}`)),
              Effect.raceFirst(vmDied),
              Effect.as(agentShell(restored.agent)),
              Effect.tap(() => mark("prepared(agent)")),
            )
          const coldGuest = Effect.gen(function* () {
            const shell = yield* connectGuestShell({
              dialer,
              host: slot.guestIp,
              hostKeyBlob: image.hostKeyBlob,
              privateKey: key.privateKey,
              readyTimeoutMs: sshReadyTimeoutMs,
            }).pipe(Effect.raceFirst(vmDied), Effect.tap(() => mark("ssh")))
            const prepare = (envInline: string | undefined) =>
              prepareGuestCommand({
                epochSeconds: Math.floor(Date.now() / 1000),
                dnsIp: slot.hostIp,
                caPem: proxy.caCertificatePem,
                envInline,
              })
            // dropbear's command length limit: a large env file gets its own write; the script is on stdin
            const inline = Buffer.byteLength(prepare(env)) <= maxInlineCommandBytes
            if (!inline) yield* shell.writeFile(envPath, env, { mode: 0o600 })
            const prepared = yield* shell.run(prepare(inline ? env : undefined), {
              stdin: workload.script,
              profile: false,
            })
            if (prepared.exitCode !== 0) return yield* fail(`preparing the guest failed: ${prepared.stderr.trim()}`)
            yield* mark("prepared")
            return shell
          })
          const agent = started.agent
          const shell = agent !== undefined ? yield* restoredGuest({ vm, agent }) : yield* coldGuest
          status("running")
          const exitCode = yield* shell.exec(runWorkloadCommand).pipe(
            Stream.runFold(() => null as number | null, (code, event) => {
              if (event._tag === "Exit") return event.exitCode
              const cap = event._tag === "Stdout" ? stdout : stderr
              live.push(event._tag === "Stdout" ? "stdout" : "stderr", cap.push(event.data))
              return code
            }),
            Effect.raceFirst(vmDied),
            Effect.raceFirst(proxyDied),
            Effect.timeoutOption(dispatch.timeoutMs),
          )
          yield* mark("workload")
          if (Option.isNone(exitCode)) {
            // Closing the scope kills the VM; the session is over at the deadline.
            return {
              status: "timeout",
              exitCode: null,
              output: null,
              error: `timed out after ${dispatch.timeoutMs} ms`,
            } as Outcome
          }
          // The node's own cap and deadline: the guest's `cat` (or agent) may be replaced by its root.
          const result = yield* shell.readFile(resultPath, config.resultCapBytes).pipe(
            Effect.map(Option.match({
              onNone: () => ({ output: null }),
              onSome: (bytes) => {
                try {
                  return { output: JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown }
                } catch (e) {
                  return { output: null, error: `${resultPath} is not valid JSON: ${(e as Error).message}` }
                }
              },
            })),
            Effect.catchTag(
              "GuestFileTooLarge",
              (e) =>
                e.cutByNode
                  ? Effect.fail(
                    fail(`the guest sent more than the ${e.maxBytes} byte cap for ${resultPath}; the node cut it off`),
                  )
                  : Effect.succeed({
                    output: null,
                    error: `${resultPath} is ${e.bytes} bytes, over the ${e.maxBytes} byte cap`,
                  }),
            ),
            Effect.timeoutOrElse({
              duration: resultReadTimeoutMs,
              orElse: () => Effect.fail(fail(`reading ${resultPath} took longer than ${resultReadTimeoutMs} ms`)),
            }),
            Effect.raceFirst(vmDied),
          )
          return {
            status: exitCode.value === 0 ? "completed" : "failed",
            exitCode: exitCode.value,
            ...result,
          } as Outcome
        })

        status("starting")
        const outcome: Outcome = yield* Effect.scoped(lifecycle).pipe(
          Effect.raceFirst(
            Deferred.await(cancel).pipe(
              Effect.as<Outcome>({ status: "cancelled", exitCode: null, output: null }),
            ),
          ),
          Effect.catchCause((cause) =>
            Effect.succeed<Outcome>({
              status: "failed",
              exitCode: null,
              output: null,
              error: Cause.squash(cause) instanceof Error
                ? (Cause.squash(cause) as Error).message
                : String(Cause.squash(cause)),
            })
          ),
        )
        yield* mark("released")
        yield* Effect.logInfo(`session ${id} ${outcome.status}: ${marks.join(" ")}`)
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
