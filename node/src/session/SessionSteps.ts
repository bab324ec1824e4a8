import { Data, Deferred, Effect, Option, Scope, Stream } from "effect"
import type { NodeSessionEvent, SessionDispatch } from "@paws/core"
import { prepareViaAgent } from "../guest/AgentPrepare.ts"
import { agentShell } from "../guest/AgentShell.ts"
import { inputEnv, writeGuestInput } from "../guest/GuestInput.ts"
import type { GuestAgent } from "../guest/GuestAgent.ts"
import { connectGuestShell, GuestShellError } from "../guest/GuestShell.ts"
import type { GuestShell } from "../guest/GuestShell.ts"
import {
  envFile,
  envPath,
  maxInlineCommandBytes,
  prepareGuestCommand,
  runWorkloadCommand,
} from "../guest/GuestSetup.ts"
import type { NetnsDialer } from "../guest/NetnsDialer.ts"
import type { NodeSshKey } from "../guest/NodeSshKey.ts"
import type { OutputCap } from "../guest/OutputCap.ts"
import type { GuestImage } from "../image/GuestImage.ts"
import type { ImageStore } from "../image/ImageStore.ts"
import { startMcpGateway } from "../mcp/McpGateway.ts"
import type { Firewall } from "../network/Firewall.ts"
import type { NetworkSlot, Slot } from "../network/NetworkSlot.ts"
import type { ProxyStarter, RunningProxy } from "../proxy/ProxyStarter.ts"
import { chooseSnapshot } from "../snapshot/SnapshotChoice.ts"
import type { Snapshot } from "../snapshot/SnapshotManifest.ts"
import type { SnapshotRestore } from "../snapshot/SnapshotRestore.ts"
import type { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import type { VmHandle, Vmm } from "../vmm/Vmm.ts"
import type { PooledVm, WarmVmPool } from "../warm/WarmVmPool.ts"
import { guestWorkload } from "./AgentWorkload.ts"
import type { LiveOutput } from "./LiveOutput.ts"
import { liveShell } from "./LiveShell.ts"
import type { WorkloadEnd } from "./WorkloadEnd.ts"

export class SessionStepFailed extends Data.TaggedError("SessionStepFailed")<{ readonly message: string }> {}

/** One session as its steps see it: what to run, where its events go, where its time goes. */
export interface SessionContext {
  readonly dispatch: SessionDispatch
  readonly emit: (event: NodeSessionEvent) => void
  /** Records a step's time since the session began (logged at the end). */
  readonly mark: (step: string) => Effect.Effect<void>
  /** Set once the proxy runs: delivers a human's decision on a request it holds (DecideEgress). */
  readonly egress: { decide?: (requestId: string, approve: boolean) => void }
}

/** Where the session's VM comes from: a warm clone, a snapshot restore, or a cold boot of `image`. */
export interface Placement {
  readonly image: GuestImage
  readonly snapshot: Option.Option<Snapshot>
  readonly pooled: Option.Option<PooledVm>
}

/** A running VM; restored ones (snapshot or warm clone) come with their connected guest agent. */
export interface StartedVm {
  readonly vm: VmHandle
  readonly agent?: GuestAgent
}

/** Fails as soon as the VM or the proxy dies: raced against every later step. */
export interface Watch {
  readonly vmDied: Effect.Effect<never, SessionStepFailed>
  readonly proxyDied: Effect.Effect<never, SessionStepFailed>
}

const sshReadyTimeoutMs = 60_000
/** Control always sends the session's approval timeout; this covers a dispatch without one. */
const defaultApprovalTimeoutMs = 5 * 60 * 1000
const fail = (message: string) => new SessionStepFailed({ message })

export interface StepServices {
  readonly images: ImageStore["Service"]
  readonly slots: NetworkSlot["Service"]
  readonly proxies: ProxyStarter["Service"]
  readonly firewall: Firewall["Service"]
  readonly vmm: Vmm["Service"]
  readonly dialer: NetnsDialer["Service"]
  readonly key: NodeSshKey["Service"]
  readonly snapshots: Option.Option<SnapshotStore["Service"]>
  readonly restorer: Option.Option<SnapshotRestore["Service"]>
  readonly warmVms: Option.Option<WarmVmPool["Service"]>
}

/**
 * The session's path through the node, one function per step. Each acquires in the caller's
 * scope what it makes (slot, proxy, firewall rules, VM, guest channel), so closing the scope
 * releases everything in reverse, whatever ended the session.
 */
export const makeSessionSteps = (s: StepServices) => {
  /** 1. Which VM: a warm clone of the chosen snapshot, a restore of it, or the image cold-booted. */
  const place = (c: SessionContext) =>
    Effect.gen(function* () {
      const { dispatch } = c
      const snapshot = yield* chooseSnapshot(s.snapshots, s.images, dispatch.snapshot, dispatch.resources)
      const image = Option.isSome(snapshot) ? snapshot.value.image : yield* s.images.get(dispatch.snapshot)
      const pooled = Option.isSome(snapshot) && Option.isSome(s.warmVms)
        ? yield* s.warmVms.value.take(snapshot.value.name, dispatch.resources)
        : Option.none<PooledVm>()
      return { image, snapshot, pooled } satisfies Placement
    })

  /** 2. The network slot (TAP + /30), isolated by the firewall before any guest exists. A warm clone brings its own. */
  const slot = (c: SessionContext, p: Placement) =>
    Effect.gen(function* () {
      if (Option.isSome(p.pooled)) {
        yield* c.mark("slot(pooled)")
        return p.pooled.value.slot
      }
      const slot = yield* s.slots.acquire(c.dispatch.sessionId)
      yield* s.firewall.isolate(slot)
      yield* c.mark("slot")
      return slot
    })

  /** 3. The session's proxy (its CA is what the guest's prepare needs); `open` lets the guest reach it. */
  const proxy = (c: SessionContext, slot: Slot) =>
    Effect.gen(function* () {
      // The session's MCP gateway (when it may use MCP servers) first: the proxy forwards to its socket.
      const mcp = c.dispatch.mcp === undefined || c.dispatch.mcp.length === 0 ? undefined : yield* startMcpGateway({
        sessionId: c.dispatch.sessionId,
        servers: c.dispatch.mcp,
        onToolCall: (event) => c.emit({ _tag: "mcp", event }),
        // `approve` tool calls are held like proxy requests: same event, same DecideEgress path.
        approvals: {
          timeoutMs: c.dispatch.network.approvalTimeoutMs ?? defaultApprovalTimeoutMs,
          onHeld: (held) => c.emit({ _tag: "egress_approval", ...held }),
        },
      })
      const proxy = yield* s.proxies.start({
        sessionId: c.dispatch.sessionId,
        hostIp: slot.hostIp,
        allowOut: c.dispatch.network.allowOut,
        credentials: c.dispatch.network.credentials,
        onAudit: (event) => c.emit({ _tag: "audit", event }),
        approvals: c.dispatch.network.approvals,
        approvalTimeoutMs: c.dispatch.network.approvalTimeoutMs,
        onApproval: (held) => c.emit({ _tag: "egress_approval", ...held }),
        ...(c.dispatch.memory?.recordLlmHistory === true
          ? {
            llmHistory: {
              maxBytes: c.dispatch.memory.llmMaxBytes,
              onExchange: (exchange) => c.emit({ _tag: "llm", exchange }),
            },
          }
          : {}),
        mcpGateway: mcp === undefined
          ? undefined
          : { socketPath: mcp.socketPath, servers: (c.dispatch.mcp ?? []).map((m) => m.name) },
      })
      // One holder for both: a request id the gateway holds is decided there, any other by the proxy.
      c.egress.decide = (requestId, approve) => {
        if (mcp?.decide(requestId, approve) !== true) proxy.decide(requestId, approve)
      }
      return proxy
    }).pipe(Effect.tap(() => c.mark("proxy")))

  /** 3b. The isolated slot's table opened to the proxy's ports: needed by the workload, not by the prepare. */
  const open = (c: SessionContext, slot: Slot, proxy: RunningProxy) =>
    s.firewall.open(slot, proxy.ports).pipe(Effect.tap(() => c.mark("firewall")))

  /** 4. The VM: the warm clone resumed, the snapshot restored, or the image cold-booted. */
  const vm = (c: SessionContext, slot: Slot, p: Placement): Effect.Effect<StartedVm, unknown, Scope.Scope> => {
    const { dispatch } = c
    const network = { guestCidr: `${slot.guestIp}/${slot.prefixLength}`, gateway: slot.hostIp, dns: slot.hostIp }
    const started: Effect.Effect<StartedVm, unknown, Scope.Scope> = Option.isSome(p.pooled)
      ? p.pooled.value.resume.pipe(Effect.map((r) => ({ vm: r.vm, agent: r.agent })))
      : Option.isSome(p.snapshot) && Option.isSome(s.restorer)
      ? s.restorer.value.restore(p.snapshot.value, { sessionId: dispatch.sessionId, tap: slot.tap, ...network })
      : s.vmm.boot({
        sessionId: dispatch.sessionId,
        image: p.image,
        tap: slot.tap,
        guestMac: slot.guestMac,
        ...network,
        vcpus: dispatch.resources.vcpus,
        memoryMB: dispatch.resources.memoryMB,
      }).pipe(Effect.map((vm) => ({ vm })))
    return started.pipe(Effect.tap((v) => c.mark(v.agent === undefined ? "vm" : "vm(restored)")))
  }

  const watch = (vm: VmHandle, proxy: RunningProxy): Watch => ({
    vmDied: vm.exited.pipe(Effect.flatMap((code) => Effect.fail(fail(`VM exited (${code}) unexpectedly`)))),
    proxyDied: Deferred.await(proxy.exited).pipe(
      Effect.flatMap((code) => Effect.fail(fail(`proxy exited (${code}) unexpectedly`))),
    ),
  })

  /**
   * 5. The guest's command channel, and the guest prepared over it (clock, DNS, CA, env file,
   * script). A restored VM: its agent (virtio-serial) writes the files itself, and SSH is never
   * dialled. A cold-booted VM has no agent: SSH once its dropbear is up, then one prepare command.
   */
  const guest = (c: SessionContext, slot: Slot, p: Placement, proxy: RunningProxy, started: StartedVm, w: Watch) => {
    // An agent workload becomes the script that runs the agent (AgentWorkload.ts).
    const workload = guestWorkload(c.dispatch.workload, c.dispatch.sessionId, (c.dispatch.mcp ?? []).map((m) => m.name))
    const input = c.dispatch.input
    const env = envFile({ ...workload.env, ...inputEnv(input) })
    const script = workload.script
    /** A daemon invocation's /input files, before the workload starts. */
    const withInput = (shell: GuestShell) =>
      input === undefined ? Effect.succeed(shell) : writeGuestInput(shell, started.agent, input).pipe(
        Effect.mapError((e) => fail(`writing /input failed: ${e.message}`)),
        Effect.raceFirst(w.vmDied),
        Effect.as(shell),
      )
    if (started.agent !== undefined) {
      const agent = started.agent
      return prepareViaAgent(agent, { caPem: proxy.caCertificatePem, env, script }).pipe(
        Effect.mapError((e) => fail(`preparing the guest failed: ${e.message}`)),
        Effect.raceFirst(w.vmDied),
        Effect.as(agentShell(agent)),
        Effect.flatMap(withInput),
        Effect.tap(() => c.mark("prepared(agent)")),
      )
    }
    return Effect.gen(function* () {
      const shell = yield* connectGuestShell({
        dialer: s.dialer,
        host: slot.guestIp,
        hostKeyBlob: p.image.hostKeyBlob,
        privateKey: s.key.privateKey,
        readyTimeoutMs: sshReadyTimeoutMs,
      }).pipe(Effect.raceFirst(w.vmDied), Effect.tap(() => c.mark("ssh")))
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
      const prepared = yield* shell.run(prepare(inline ? env : undefined), { stdin: script, profile: false })
      if (prepared.exitCode !== 0) return yield* fail(`preparing the guest failed: ${prepared.stderr.trim()}`)
      yield* withInput(shell)
      yield* c.mark("prepared")
      return shell
    })
  }

  /**
   * 5b. The shell for live exec and files: over SSH the session's own (its channels run side by side);
   * over the agent, SSH while the workload runs (LiveShell), dialled on first need within the session.
   */
  const live = (slot: Slot, p: Placement, started: StartedVm, shell: GuestShell, workloadRunning: () => boolean) =>
    Effect.gen(function* () {
      if (started.agent === undefined) return shell
      const scope = yield* Effect.scope
      const ssh = yield* Effect.cached(
        connectGuestShell({
          dialer: s.dialer,
          host: slot.guestIp,
          hostKeyBlob: p.image.hostKeyBlob,
          privateKey: s.key.privateKey,
          readyTimeoutMs: 10_000,
        }).pipe(
          Scope.provide(scope),
          Effect.mapError((e) => new GuestShellError({ message: `the guest's SSH, for live use: ${e.message}` })),
        ),
      )
      return liveShell(shell, workloadRunning, ssh)
    })

  /**
   * 6. The workload, its output streamed through the caps; how it ended (its Exit, or none if its
   * output ended without one); None when the session's deadline passed.
   */
  const workload = (
    c: SessionContext,
    shell: GuestShell,
    w: Watch,
    out: { readonly stdout: OutputCap; readonly stderr: OutputCap; readonly live: LiveOutput },
  ) =>
    shell.exec(runWorkloadCommand).pipe(
      Stream.runFold((): WorkloadEnd => ({ exitCode: null, signal: undefined }), (end, event) => {
        if (event._tag === "Exit") return { exitCode: event.exitCode, signal: event.signal }
        const cap = event._tag === "Stdout" ? out.stdout : out.stderr
        out.live.push(event._tag === "Stdout" ? "stdout" : "stderr", cap.push(event.data))
        return end
      }),
      Effect.raceFirst(w.vmDied),
      Effect.raceFirst(w.proxyDied),
      Effect.timeoutOption(c.dispatch.timeoutMs),
      Effect.tap(() => c.mark("workload")),
    )

  return { place, slot, proxy, open, vm, watch, guest, live, workload }
}
