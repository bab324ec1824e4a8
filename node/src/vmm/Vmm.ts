import { Context, Data } from "effect"
import type { Effect, Scope } from "effect"
import type { GuestImage } from "../image/GuestImage.ts"
import type { QmpError } from "./Qmp.ts"

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

export class Vmm extends Context.Service<Vmm, {
  /** Boots a VM; the handle lives as long as the surrounding Scope. */
  readonly start: (config: VmConfig) => Effect.Effect<VmHandle, VmStartError, Scope.Scope>
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
