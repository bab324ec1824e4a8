import { Config, Effect, Layer, Option, Semaphore } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { dataDirConfig } from "../image/GuestImage.ts"
import { createOverlay, makeRunDir } from "./RunDir.ts"
import { makeSnapshotVms } from "./SnapshotVms.ts"
import { decideAccelerator, tscArgs } from "./AccelProbe.ts"
import { accelArg } from "./MachineArgs.ts"
import { qemuLauncher } from "./QemuLauncher.ts"
import { launchQemu } from "./QemuProcess.ts"
import { Vmm, vmProcessName, vmRunDirName, VmStartError } from "./Vmm.ts"
import type { Accelerator, VmConfig, VmHandle } from "./Vmm.ts"
import { nodeSettings } from "../NodeConfig.ts"

/** Settings from microvm-here.md: each shaved boot time or removed a hang. */
const baseCmdline = "console=ttyS0 quiet panic=-1 reboot=t mitigations=off cryptomgr.notests 8250.nr_uarts=1 pci=off"

export const vmmConfig = Config.all({
  dataDir: dataDirConfig,
  runDir: nodeSettings.runDir.config,
  accel: nodeSettings.accel.config,
  netns: nodeSettings.netns.config,
  tcgCacheMiB: nodeSettings.tcgCacheMiB.config,
})

export interface QemuMicrovmOptions {
  /** Parent of the per-VM `vm-<sessionId>/` dirs. */
  readonly runDir: string
  readonly accel: "kvm" | "tcg" | "auto"
  /** Network namespace to run QEMU in (where the TAPs are). */
  readonly netns: string | undefined
  /** User QEMU drops to after setup; default "nobody" when running as root, "" to stay. */
  readonly runAs?: string
  /** TCG translation cache per VM (MiB); unset or 0: QEMU's own. */
  readonly tcgCacheMiB?: number
}

/** The QEMU `-M microvm` driver (config: PAWS_RUN_DIR, PAWS_ACCEL, PAWS_NODE_NETNS). */
export const QemuMicrovm = Layer.effect(
  Vmm,
  Effect.gen(function* () {
    const config = yield* vmmConfig
    return yield* makeQemuMicrovm({
      runDir: Option.getOrElse(config.runDir, () => path.join(config.dataDir, "run")),
      accel: config.accel,
      netns: Option.getOrUndefined(config.netns),
      tcgCacheMiB: config.tcgCacheMiB,
    })
  }),
)

/** Per-VM qcow2 overlay over the image's ext4 root; one QMP socket and console log per VM. */
export const makeQemuMicrovm = (options: QemuMicrovmOptions) =>
  Effect.gen(function* () {
    const runRoot = path.resolve(options.runDir)
    const netns = options.netns
    const probeLock = yield* Semaphore.make(1)
    // Built (or found) once, on the first VM: a node that never starts one never needs gcc for it.
    const launcher = yield* Effect.cached(qemuLauncher(path.join(runRoot, ".bin")))
    let decided: Accelerator | undefined
    const accelerator = (kernelPath: string) =>
      decided !== undefined ? Effect.succeed(decided) : Semaphore.withPermit(
        probeLock,
        Effect.suspend(() =>
          decided !== undefined ? Effect.succeed(decided) : decideAccelerator(options.accel, kernelPath).pipe(
            Effect.tap((a) => Effect.sync(() => (decided = a))),
            Effect.tap((a) => Effect.logInfo(`VM accelerator: ${a} (PAWS_ACCEL=${options.accel})`)),
          )
        ),
      )

    const boot = Effect.fn("Vmm.boot")(function* (vm: VmConfig) {
      const runDir = path.join(runRoot, vmRunDirName(vm.sessionId))
      const fail = (message: string, detail?: string) =>
        new VmStartError({ sessionId: vm.sessionId, message, ...(detail === undefined ? {} : { detail }) })
      const invalid = configProblem(vm, runDir)
      if (invalid !== undefined) return yield* fail(invalid)
      const accel = yield* accelerator(vm.image.kernelPath)

      // 1. runtime dir (removed last, after QEMU is gone) and the disk overlay
      yield* makeRunDir(vm.sessionId, runRoot, vmRunDirName(vm.sessionId))
      const overlayPath = path.join(runDir, "disk.qcow2")
      const consoleLogPath = path.join(runDir, "console.log")
      const qmpPath = path.join(runDir, "qmp.sock")
      const stderrPath = path.join(runDir, "qemu.log")
      yield* createOverlay(vm.sessionId, vm.image.rootfsPath, "raw", overlayPath)

      // 2. QEMU itself; release = QMP quit, then SIGKILL after a grace period
      const runAs = options.runAs === undefined ? (process.getuid?.() === 0 ? "nobody" : undefined) : options.runAs
      const argv = qemuArgs(vm, {
        accel,
        overlayPath,
        consoleLogPath,
        qmpPath,
        runAs: runAs || undefined,
        tcgCacheMiB: options.tcgCacheMiB,
      })
      const qemu = yield* launchQemu({
        sessionId: vm.sessionId,
        netns,
        argv,
        qmpPath,
        stderrPath,
        consoleLogPath,
        launcher: yield* launcher,
      })
      const live = qemu.qmp
      const readText = (p: string) => Effect.promise(() => fs.readFile(p, "utf8").catch(() => ""))
      const status = yield* live.execute("query-status").pipe(
        Effect.catch((e) => Effect.flatMap(qemu.diagnostics, (d) => Effect.fail(fail(e.message, d)))),
      )
      yield* Effect.logDebug(`VM ${vm.sessionId} pid ${qemu.pid} ${accel}`, status)

      const handle: VmHandle = {
        sessionId: vm.sessionId,
        pid: qemu.pid,
        accelerator: accel,
        netns,
        runDir,
        overlayPath,
        consoleLogPath,
        console: readText(consoleLogPath),
        exited: qemu.exited,
        qmp: (cmd, a) => live.execute(cmd, a),
      }
      return handle
    })

    const snapshots = makeSnapshotVms(runRoot, netns, { tcgCacheMiB: options.tcgCacheMiB, launcher })
    return Vmm.of({ boot, ...snapshots, accelerator, netns, runDir: runRoot })
  })

/** These values land in QEMU's comma-separated options, paths and sockets: reject anything odd. */
const configProblem = (vm: VmConfig, runDir: string): string | undefined => {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(vm.sessionId)) return `session id ${JSON.stringify(vm.sessionId)} is not a plain id`
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(vm.tap)) return `TAP name ${JSON.stringify(vm.tap)} is not an interface name`
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(vm.guestMac)) return `guest MAC ${JSON.stringify(vm.guestMac)} is invalid`
  if (!/^[0-9.]+\/[0-9]{1,2}$/.test(vm.guestCidr) || !/^[0-9.]+$/.test(vm.gateway)) return "guest address is invalid"
  if (vm.dns !== undefined && !/^[0-9.]+$/.test(vm.dns)) return "DNS address is invalid"
  // sun_path holds 108 bytes; QEMU would fail later with a less helpful message
  if (path.join(runDir, "qmp.sock").length > 100) return `runtime dir ${runDir} is too long for a unix socket path`
  return undefined
}

const qemuArgs = (vm: VmConfig, o: {
  readonly accel: Accelerator
  readonly overlayPath: string
  readonly consoleLogPath: string
  readonly qmpPath: string
  readonly runAs: string | undefined
  readonly tcgCacheMiB: number | undefined
}): Array<string> => {
  const net = [`vm.ip=${vm.guestCidr}`, `vm.gw=${vm.gateway}`, ...(vm.dns ? [`vm.dns=${vm.dns}`] : [])]
  return [
    ...["-name", vmProcessName(vm.sessionId)],
    ...[
      "-M",
      "microvm,acpi=on",
      "-accel",
      accelArg(o.accel, o.tcgCacheMiB),
      "-cpu",
      o.accel === "kvm" ? "host" : "max",
    ],
    ...["-m", String(vm.memoryMB ?? 256), "-smp", String(vm.vcpus ?? 1)],
    ...["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"],
    // seccomp: no new privileges, no obsolete syscalls; spawn stays allowed for exec: migration
    // After opening TAP, disk, sockets and log as root, QEMU drops to an unprivileged user, so a
    // guest escape lands as `nobody`; seccomp on top (set*id must stay allowed for -runas).
    ...(o.runAs ? ["-runas", o.runAs] : []),
    ...["-sandbox", "on,obsolete=deny,resourcecontrol=deny"],
    ...["-serial", `file:${o.consoleLogPath}`],
    ...["-kernel", vm.image.kernelPath, "-initrd", vm.image.initrdPath],
    ...["-drive", `id=d0,file=${o.overlayPath},format=qcow2,if=none`, "-device", "virtio-blk-device,drive=d0"],
    ...["-netdev", `tap,id=n0,ifname=${vm.tap},script=no,downscript=no`],
    ...["-device", `virtio-net-device,netdev=n0,mac=${vm.guestMac}`],
    ...["-qmp", `unix:${o.qmpPath},server=on,wait=off`],
    ...["-append", `${baseCmdline} ${tscArgs()} ${net.join(" ")}`],
  ]
}
