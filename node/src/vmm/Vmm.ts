import { Context, Data } from "effect"
import type { Effect, Scope } from "effect"
import type { GuestImage } from "../image/GuestImage.ts"
import type { QmpError } from "./Qmp.ts"
import type { MachineSpec } from "./MachineArgs.ts"
import type { QemuProcess } from "./QemuProcess.ts"

export type Accelerator = "kvm" | "tcg"

/** What one VM needs; the network half (TAP, MAC, addresses) comes from the session's NetworkSlot. */
export interface VmConfig {
  readonly sessionId: string
  readonly image: GuestImage
  /** Existing TAP device (in the node's netns, if one is configured). */
  readonly tap: string
  /** Guest MAC, fixed per slot so a restored guest's ARP cache stays valid. */
  readonly guestMac: string
  /** Guest address with prefix, e.g. "172.16.0.2/30" (kernel cmdline `vm.ip=`). */
  readonly guestCidr: string
  /** Default gateway, the host end of the TAP (`vm.gw=`). */
  readonly gateway: string
  /** Resolver written to /etc/resolv.conf (`vm.dns=`); none when absent. */
  readonly dns?: string
  readonly vcpus?: number
  readonly memoryMB?: number
}

/** A running VM. Released by the scope that started it: QMP quit, SIGKILL fallback, files removed. */
export interface VmHandle {
  readonly sessionId: string
  readonly pid: number
  readonly accelerator: Accelerator
  readonly netns: string | undefined
  /** `<run>/vm-<sessionId>/`: overlay, QMP socket, console log; removed on release. */
  readonly runDir: string
  readonly overlayPath: string
  readonly consoleLogPath: string
  /** Serial console so far (boot diagnostics). */
  readonly console: Effect.Effect<string>
  /** QEMU's exit code (null when killed by a signal), once it has exited. */
  readonly exited: Effect.Effect<number | null>
  readonly qmp: (command: string, args?: Record<string, unknown>) => Effect.Effect<unknown, QmpError>
}

export class VmStartError extends Data.TaggedError("VmStartError")<{
  readonly sessionId: string
  readonly message: string
  /** Tail of the serial console / QEMU stderr when they explain the failure. */
  readonly detail?: string
}> {}

/** A snapshot's source VM: booted with its RAM in a shared file under `dir`, its disk an overlay there. */
export interface SnapshotSourceConfig {
  readonly sessionId: string
  /** The snapshot's (temporary) directory: disk, RAM and state files land here. */
  readonly dir: string
  readonly files: { readonly disk: string; readonly ram: string; readonly state: string }
  /** The image's raw root filesystem. */
  readonly baseDisk: string
  readonly spec: MachineSpec
  readonly tap: string
}

export interface SnapshotSourceVm {
  readonly sessionId: string
  /** The guest agent's channel (a unix socket QEMU serves). */
  readonly controlPath: string
  readonly process: QemuProcess
  readonly stateFile: string
}

/** A clone of a snapshot: its files, the machine it was made on, and where the clone runs. */
export interface RestoreConfig {
  readonly sessionId: string
  readonly tap: string
  readonly spec: MachineSpec
  /** The snapshot's qcow2 disk (the clone gets an overlay over it). */
  readonly diskPath: string
  /** Mapped privately: the clone's writes never reach the file. */
  readonly ramPath: string
  readonly statePath: string
}

/** A clone with its device state loaded, paused. `A` is what `attach` made of its guest channel. */
export interface RestoredMachine<A> {
  readonly vm: VmHandle
  readonly attached: A
  readonly running: () => boolean
  /** ms since the restore began: QEMU up (QMP), state loaded (paused). */
  readonly timings: { readonly qmp: number; readonly loaded: number }
  readonly cont: Effect.Effect<void, VmStartError>
  readonly stop: Effect.Effect<void, VmStartError>
  /** Errors of `eff` as VmStartErrors carrying this QEMU's diagnostics. */
  readonly diagnose: <B, E extends { readonly message: string }, R>(
    eff: Effect.Effect<B, E, R>,
  ) => Effect.Effect<B, VmStartError, R>
  readonly fail: (message: string) => Effect.Effect<never, VmStartError>
}

export class Vmm extends Context.Service<Vmm, {
  /** Cold-boots a VM from an image; the handle lives as long as the surrounding Scope. */
  readonly boot: (config: VmConfig) => Effect.Effect<VmHandle, VmStartError, Scope.Scope>
  /** Boots a snapshot's source VM (shared RAM file, guest agent port) in the scope. */
  readonly bootSource: (config: SnapshotSourceConfig) => Effect.Effect<SnapshotSourceVm, VmStartError, Scope.Scope>
  /** Pauses a source VM and writes its device state next to its RAM and disk. */
  readonly save: (source: SnapshotSourceVm) => Effect.Effect<void, VmStartError>
  /**
   * Starts a clone in the scope, up to "state loaded, paused"; `attach` runs once QEMU is up and
   * before the state loads (the guest agent connects there).
   */
  readonly restore: <A>(
    config: RestoreConfig,
    attach: (controlPath: string) => Effect.Effect<A, VmStartError, Scope.Scope>,
  ) => Effect.Effect<RestoredMachine<A>, VmStartError, Scope.Scope>
  /** The accelerator VMs get (probed once: KVM only when a probe boot under KVM works). */
  readonly accelerator: (kernelPath: string) => Effect.Effect<Accelerator>
  /** Network namespace QEMU runs in (config `PAWS_NODE_NETNS`), if any. */
  readonly netns: string | undefined
  /** Parent of the per-VM runtime dirs, for reconcile. */
  readonly runDir: string
}>()("paws/vmm/Vmm") {}

/** Every VMM artefact carries the session id: `vm-<id>` dirs, `paws-<id>` QEMU names. */
export const vmRunDirName = (sessionId: string) => `vm-${sessionId}`
export const vmProcessName = (sessionId: string) => `paws-${sessionId}`
