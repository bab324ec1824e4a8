import { vmProcessName } from "./Vmm.ts"
import type { Accelerator } from "./Vmm.ts"

/** What must be identical between a snapshot's source VM and every clone. */
export interface MachineSpec {
  readonly accelerator: Accelerator
  readonly memoryMB: number
  readonly vcpus: number
  readonly kernelPath: string
  readonly initrdPath: string
  readonly cmdline: string
  readonly guestMac: string
}

/** Per-VM paths and devices; never part of the snapshot. */
export interface MachineInstance {
  readonly sessionId: string
  readonly tap: string
  readonly diskPath: string
  readonly ramPath: string
  /** Source: the guest writes RAM through to the file. Clone: private copy-on-write mapping of it. */
  readonly ramShared: boolean
  readonly qmpPath: string
  readonly consoleLogPath: string
  readonly controlPath: string
  readonly runAs: string | undefined
  /** Clones wait for `migrate-incoming`. */
  readonly incoming: boolean
  /** TCG's translation cache (MiB); unset: QEMU's own (grows to 1 GiB as code is translated). Not part of a snapshot. */
  readonly tcgCacheMiB?: number | undefined
  /** `-add-fd` sets for files QEMU must reopen after dropping privileges (disk at `cont`). */
  readonly fdSets?: ReadonlyArray<{ readonly fd: number; readonly set: number }>
}

/** Kernel command line of snapshot VMs (QemuMicrovm's settings; each shaved boot time or removed a hang). */
export const snapshotCmdline = (tsc: string, net: { guestCidr: string; gateway: string; dns: string }) =>
  [
    "console=ttyS0 quiet panic=-1 reboot=t mitigations=off cryptomgr.notests 8250.nr_uarts=1 pci=off",
    tsc,
    `vm.ip=${net.guestCidr} vm.gw=${net.gateway} vm.dns=${net.dns}`,
  ].join(" ")

/**
 * `-accel`: under TCG with a cache size, `tb-size` bounds the translated code each VM keeps resident
 * (a sleeping clone otherwise holds ~18 MiB of it); a full cache is flushed and refilled, which costs
 * CPU while a guest runs much code.
 */
export const accelArg = (accelerator: Accelerator, tcgCacheMiB: number | undefined): string =>
  accelerator === "tcg" && tcgCacheMiB !== undefined && tcgCacheMiB > 0
    ? `tcg,tb-size=${Math.floor(tcgCacheMiB)}`
    : accelerator

/** The guest agent's virtio-serial port name (vsock is unavailable on this host kernel). */
export const controlPortName = "paws.ctl"

/**
 * QEMU argv for a snapshot-capable microvm: RAM in a file-backed memory object (shared RAM +
 * `x-ignore-shared` migration: restore maps it instead of copying 256 MiB), a virtio-serial
 * control port for the guest agent, and exactly one disk, NIC, serial console and QMP socket.
 */
export const machineArgs = (m: MachineSpec, vm: MachineInstance): Array<string> => [
  ...["-name", vmProcessName(vm.sessionId)],
  ...[
    "-object",
    `memory-backend-file,id=mem0,size=${m.memoryMB}M,mem-path=${vm.ramPath},share=${vm.ramShared ? "on" : "off"}`,
  ],
  ...["-M", "microvm,acpi=on,memory-backend=mem0", "-accel", accelArg(m.accelerator, vm.tcgCacheMiB)],
  ...["-cpu", m.accelerator === "kvm" ? "host" : "max", "-m", `${m.memoryMB}M`, "-smp", String(m.vcpus)],
  ...["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"],
  ...(vm.runAs ? ["-runas", vm.runAs] : []),
  ...(vm.fdSets ?? []).flatMap((f) => ["-add-fd", `fd=${f.fd},set=${f.set}`]),
  ...["-sandbox", "on,obsolete=deny,resourcecontrol=deny"],
  ...["-serial", `file:${vm.consoleLogPath}`],
  ...["-kernel", m.kernelPath, "-initrd", m.initrdPath],
  ...["-drive", `id=d0,file=${vm.diskPath},format=qcow2,if=none`, "-device", "virtio-blk-device,drive=d0"],
  ...["-netdev", `tap,id=n0,ifname=${vm.tap},script=no,downscript=no`],
  ...["-device", `virtio-net-device,netdev=n0,mac=${m.guestMac}`],
  ...["-device", "virtio-serial-device,id=vs0", "-chardev", `socket,id=ctl,path=${vm.controlPath},server=on,wait=off`],
  ...["-device", `virtserialport,chardev=ctl,name=${controlPortName}`],
  ...["-qmp", `unix:${vm.qmpPath},server=on,wait=off`],
  ...(vm.incoming ? ["-incoming", "defer"] : []),
  ...["-append", m.cmdline],
]

/** The argv with everything per-VM replaced by placeholders: the device layout a snapshot records. */
export const deviceSignature = (m: Omit<MachineSpec, "kernelPath" | "initrdPath" | "cmdline">): Array<string> =>
  machineArgs({ ...m, kernelPath: "KERNEL", initrdPath: "INITRD", cmdline: "CMDLINE" }, {
    sessionId: "SESSION",
    tap: "TAP",
    diskPath: "DISK",
    ramPath: "RAM",
    ramShared: false,
    qmpPath: "QMP",
    consoleLogPath: "CONSOLE",
    controlPath: "CONTROL",
    runAs: undefined,
    incoming: false,
  })
