import { Effect } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { machineArgs } from "./MachineArgs.ts"
import { launchQemu } from "./QemuProcess.ts"
import type { QemuProcess } from "./QemuProcess.ts"
import { createOverlay, makeRunDir } from "./RunDir.ts"
import { vmRunDirName, VmStartError } from "./Vmm.ts"
import type { RestoreConfig, RestoredMachine, SnapshotSourceConfig, SnapshotSourceVm, VmHandle } from "./Vmm.ts"

const readText = (p: string) => Effect.promise(() => fs.readFile(p, "utf8").catch(() => ""))

/** QEMU drops to nobody after setup when the node is root: a guest escape lands unprivileged. */
const dropTo = () => (process.getuid?.() === 0 ? "nobody" : undefined)

/** A file held open for QEMU to inherit (it cannot reopen paths in root-only dirs once it is nobody). */
const openFor = (sessionId: string, p: string, flags: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => fs.open(p, flags),
      catch: (e) => new VmStartError({ sessionId, message: `cannot open ${p}: ${(e as Error).message}` }),
    }),
    (h) => Effect.promise(() => h.close()),
  )

/** Errors of a running QEMU carry its stderr and console tails. */
const diagnosed = (sessionId: string, q: QemuProcess) =>
<A, E extends { readonly message: string }, R>(
  eff: Effect.Effect<A, E, R>,
): Effect.Effect<A, VmStartError, R> =>
  eff.pipe(
    Effect.catch((e) =>
      Effect.flatMap(q.diagnostics, (d) => Effect.fail(new VmStartError({ sessionId, message: e.message, detail: d })))
    ),
  )

/**
 * The snapshot side of the VMM: boot a snapshot's source VM (RAM in a shared file), save its
 * device state, and load clones from it. Every QEMU launch of the node goes through here or
 * `QemuMicrovm.boot`; `snapshot/` only describes snapshots.
 */
export const makeSnapshotVms = (
  runRoot: string,
  netns: string | undefined,
  qemu: {
    readonly tcgCacheMiB?: number | undefined
    /** What QEMU is started through (QemuLauncher). */
    readonly launcher?: Effect.Effect<ReadonlyArray<string>> | undefined
  } = {},
) => {
  const { tcgCacheMiB } = qemu
  const launcher = qemu.launcher ?? Effect.succeed([])
  const bootSource = (o: SnapshotSourceConfig): Effect.Effect<SnapshotSourceVm, VmStartError, Scope.Scope> =>
    Effect.gen(function* () {
      const file = (f: string) => path.join(o.dir, f)
      yield* createOverlay(o.sessionId, o.baseDisk, "raw", file(o.files.disk))
      // Saving inactivates the disk, which reopens it: through fd set 1 (fd 3 read-write, fd 4
      // read-only), as nobody cannot traverse the data dir.
      const diskRw = yield* openFor(o.sessionId, file(o.files.disk), "r+")
      const diskRo = yield* openFor(o.sessionId, file(o.files.disk), "r")
      const q = yield* launchQemu({
        launcher: yield* launcher,
        sessionId: o.sessionId,
        netns,
        qmpPath: file("qmp.sock"),
        stderrPath: file("qemu.log"),
        consoleLogPath: file("console.log"),
        fds: [diskRw.fd, diskRo.fd],
        argv: machineArgs(o.spec, {
          sessionId: o.sessionId,
          tap: o.tap,
          diskPath: "/dev/fdset/1",
          fdSets: [{ fd: 3, set: 1 }, { fd: 4, set: 1 }],
          ramPath: file(o.files.ram),
          ramShared: true,
          qmpPath: file("qmp.sock"),
          consoleLogPath: file("console.log"),
          controlPath: file("ctl.sock"),
          runAs: dropTo(),
          incoming: false,
        }),
      })
      return { sessionId: o.sessionId, controlPath: file("ctl.sock"), process: q, stateFile: file(o.files.state) }
    })

  /** Pauses the source and writes its device state (RAM is already in the shared file). */
  const save = (source: SnapshotSourceVm): Effect.Effect<void, VmStartError> =>
    Effect.scoped(Effect.gen(function* () {
      const withDiagnostics = diagnosed(source.sessionId, source.process)
      const qmp = (cmd: string, args?: Record<string, unknown>) =>
        withDiagnostics(source.process.qmp.execute(cmd, args))
      // QEMU (nobody) writes the state into a scratch dir it may write; GLib's spawn closes
      // inherited fds, so `exec:cat >&N` cannot work.
      const saveDir = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const d = await fs.mkdtemp(path.join(os.tmpdir(), "paws-snapsave-"))
          if (dropTo()) await fs.chown(d, 65534, 65534)
          return d
        }),
        (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true })),
      )
      yield* qmp("stop")
      yield* qmp("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] })
      yield* qmp("migrate-set-parameters", { "max-bandwidth": 64 * 1024 ** 3 })
      yield* qmp("migrate", { uri: `exec:cat > ${path.join(saveDir, "state")}` })
      for (;;) {
        const m = (yield* qmp("query-migrate")) as { status?: string; "error-desc"?: string }
        if (m.status === "completed") break
        if (m.status === "failed" || m.status === "cancelled") {
          return yield* Effect.flatMap(source.process.diagnostics, (d) =>
            Effect.fail(
              new VmStartError({
                sessionId: source.sessionId,
                message: `saving device state: ${m.status} ${m["error-desc"] ?? ""}`,
                detail: d,
              }),
            ))
        }
        yield* Effect.sleep(5)
      }
      yield* Effect.promise(() => fs.copyFile(path.join(saveDir, "state"), source.stateFile))
    }))

  const restore = <A>(
    o: RestoreConfig,
    attach: (controlPath: string) => Effect.Effect<A, VmStartError, Scope.Scope>,
  ): Effect.Effect<RestoredMachine<A>, VmStartError, Scope.Scope> =>
    Effect.gen(function* () {
      const t0 = performance.now()
      const since = () => Math.round((performance.now() - t0) * 10) / 10
      const runDir = yield* makeRunDir(o.sessionId, runRoot, vmRunDirName(o.sessionId))
      const file = (f: string) => path.join(runDir, f)
      const overlayPath = file("disk.qcow2")
      yield* createOverlay(o.sessionId, o.diskPath, "qcow2", overlayPath)
      // QEMU has dropped to nobody when it reads the device state (fd 4, `migrate-incoming fd:4`)
      // and when `cont` activates the disk, which reopens it: through fd set 1 (fd 3), not a path
      // in the root-only data dir.
      const disk = yield* openFor(o.sessionId, overlayPath, "r+")
      const state = yield* openFor(o.sessionId, o.statePath, "r")
      const diskReadOnly = yield* openFor(o.sessionId, overlayPath, "r") // an fd set hands out fds by access mode
      const consoleLogPath = file("console.log")
      const q = yield* launchQemu({
        launcher: yield* launcher,
        sessionId: o.sessionId,
        netns,
        qmpPath: file("qmp.sock"),
        stderrPath: file("qemu.log"),
        consoleLogPath,
        fds: [disk.fd, state.fd, diskReadOnly.fd],
        argv: machineArgs(o.spec, {
          sessionId: o.sessionId,
          tap: o.tap,
          diskPath: "/dev/fdset/1",
          fdSets: [{ fd: 3, set: 1 }, { fd: 5, set: 1 }],
          ramPath: o.ramPath,
          ramShared: false,
          qmpPath: file("qmp.sock"),
          consoleLogPath,
          controlPath: file("ctl.sock"),
          runAs: dropTo(),
          incoming: true,
          tcgCacheMiB,
        }),
      })
      const qmpAt = since()
      const withDiagnostics = diagnosed(o.sessionId, q)
      // Attached before the state loads, so the guest's channel never sees the host go away.
      const attached = yield* withDiagnostics(attach(file("ctl.sock")))
      const qmp = (cmd: string, args?: Record<string, unknown>) => withDiagnostics(q.qmp.execute(cmd, args))
      yield* qmp("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] })
      yield* qmp("migrate-incoming", { uri: "fd:4" })
      for (;;) {
        const s = (yield* qmp("query-status")) as { status: string }
        if (s.status === "paused") break
        if (s.status !== "inmigrate") {
          return yield* Effect.flatMap(q.diagnostics, (d) =>
            Effect.fail(
              new VmStartError({ sessionId: o.sessionId, message: `restore ended in ${s.status}`, detail: d }),
            ))
        }
        yield* Effect.sleep(2)
      }
      const vm: VmHandle = {
        sessionId: o.sessionId,
        pid: q.pid,
        accelerator: o.spec.accelerator,
        netns,
        runDir,
        overlayPath,
        consoleLogPath,
        console: readText(consoleLogPath),
        exited: q.exited,
        qmp: (cmd, a) => q.qmp.execute(cmd, a),
      }
      return {
        vm,
        attached,
        running: q.running,
        timings: { qmp: qmpAt, loaded: since() },
        cont: qmp("cont").pipe(Effect.asVoid),
        stop: qmp("stop").pipe(Effect.asVoid),
        diagnose: withDiagnostics,
        fail: (message: string) =>
          Effect.flatMap(q.diagnostics, (d) =>
            Effect.fail(new VmStartError({ sessionId: o.sessionId, message, detail: d }))),
      }
    })

  return { bootSource, save, restore }
}
