import { Context, Effect, Layer } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { connectGuestShell } from "../guest/GuestShell.ts"
import { NetnsDialer } from "../guest/NetnsDialer.ts"
import { NodeSshKey } from "../guest/NodeSshKey.ts"
import { runHostCommand } from "../image/HostCommand.ts"
import { ImageStore } from "../image/ImageStore.ts"
import { hostMac } from "../network/Naming.ts"
import { tscArgs } from "../vmm/AccelProbe.ts"
import { Vmm } from "../vmm/Vmm.ts"
import { agentPath, agentScript, buildRestoreHelper, connectGuestAgent, restoreHelperPath } from "./GuestAgent.ts"
import { launchQemu } from "../vmm/QemuProcess.ts"
import { controlPortName, deviceSignature, machineArgs, snapshotCmdline } from "./SnapshotMachine.ts"
import type { MachineSpec } from "./SnapshotMachine.ts"
import {
  SnapshotBuildError,
  snapshotDirConfig,
  snapshotFiles,
  snapshotFormat,
  validSnapshotName,
} from "./SnapshotManifest.ts"
import type { SnapshotManifest } from "./SnapshotManifest.ts"

/** Where the source VM runs while it is prepared (a network slot, or a test TAP). */
export interface SnapshotNet {
  readonly tap: string
  readonly guestMac: string
  readonly guestIp: string
  readonly guestCidr: string
  readonly gateway: string
  readonly dns: string
}

export interface SnapshotBuildOptions {
  readonly name: string
  /** Image to boot; default: the snapshot's own name (the default image gets the default snapshot). */
  readonly image?: string
  /** Shell script run as root in the guest before the snapshot; must exit 0. */
  readonly setup?: string
  /** Run as root right before `setup` (the build's network: proxy CA, DNS); must exit 0. */
  readonly beforeSetup?: string
  /** Run after `setup` succeeded, before the pause: undoes `beforeSetup` so that clones keep nothing of it. */
  readonly afterSetup?: string
  readonly memoryMB?: number
  readonly vcpus?: number
  readonly net: SnapshotNet
  readonly onProgress?: (phase: string, ms: number) => void
}

export class SnapshotBuilder extends Context.Service<SnapshotBuilder, {
  /** Boots the image, runs setup, pauses and saves; replaces a snapshot of the same name atomically. */
  readonly build: (options: SnapshotBuildOptions) => Effect.Effect<SnapshotManifest, SnapshotBuildError>
  readonly dir: string
}>()("paws/snapshot/SnapshotBuilder") {
  static readonly layerNoDeps = Layer.effect(
    SnapshotBuilder,
    Effect.gen(function* () {
      const dir = yield* snapshotDirConfig
      const images = yield* ImageStore
      const vmm = yield* Vmm
      const dialer = yield* NetnsDialer
      const key = yield* NodeSshKey

      const build = Effect.fn("SnapshotBuilder.build")(function* (o: SnapshotBuildOptions) {
        const fail = (message: string, detail?: string) =>
          new SnapshotBuildError({ snapshot: o.name, message, ...(detail === undefined ? {} : { detail }) })
        if (!validSnapshotName(o.name)) return yield* fail(`invalid snapshot name "${o.name}"`)
        const image = yield* images.get(o.image ?? o.name).pipe(Effect.mapError((e) => fail(e.message)))
        const started = Date.now()
        const buildMs: Record<string, number> = {}
        const phase = (name: string) =>
          Effect.sync(() => {
            buildMs[name] = Date.now() - started
            o.onProgress?.(name, buildMs[name]!)
          })
        const helper = yield* buildRestoreHelper(path.join(dir, ".cache")).pipe(Effect.mapError((e) => fail(e.message)))
        const spec: MachineSpec = {
          accelerator: yield* vmm.accelerator(image.kernelPath),
          memoryMB: o.memoryMB ?? 256,
          vcpus: o.vcpus ?? 1,
          kernelPath: image.kernelPath,
          initrdPath: image.initrdPath,
          cmdline: snapshotCmdline(tscArgs(), o.net),
          guestMac: o.net.guestMac,
        }
        const tmp = path.join(dir, `.build-${o.name}-${randomBytes(4).toString("hex")}`)
        const file = (f: string) => path.join(tmp, f)
        const sessionId = `0190f000-0000-7000-8000-${randomBytes(6).toString("hex")}`

        const source = Effect.gen(function* () {
          yield* runHostCommand("qemu-img", [
            ...["create", "-q", "-f", "qcow2", "-b", image.rootfsPath, "-F", "raw", file(snapshotFiles.disk)],
          ]).pipe(Effect.mapError((e) => fail("qemu-img create failed", e.stderr)))
          // QEMU drops to nobody (the setup script is user code). Saving inactivates the disk, which
          // reopens it: through fd set 1 (fd 3 read-write, fd 4 read-only), as nobody cannot traverse
          // the data dir. The device state goes to a scratch dir nobody may write (GLib's spawn
          // closes inherited fds, so `exec:cat >&N` cannot work).
          const runAs = process.getuid?.() === 0 ? "nobody" : undefined
          const openDisk = (flags: string) =>
            Effect.acquireRelease(
              Effect.promise(() => fs.open(file(snapshotFiles.disk), flags)),
              (h) => Effect.promise(() => h.close()),
            )
          const diskRw = yield* openDisk("r+")
          const diskRo = yield* openDisk("r")
          const saveDir = yield* Effect.acquireRelease(
            Effect.promise(async () => {
              const d = await fs.mkdtemp(path.join(os.tmpdir(), "paws-snapsave-"))
              if (runAs) await fs.chown(d, 65534, 65534)
              return d
            }),
            (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true })),
          )
          const q = yield* launchQemu({
            sessionId,
            netns: vmm.netns,
            qmpPath: file("qmp.sock"),
            stderrPath: file("qemu.log"),
            consoleLogPath: file("console.log"),
            fds: [diskRw.fd, diskRo.fd],
            argv: machineArgs(spec, {
              sessionId,
              tap: o.net.tap,
              diskPath: "/dev/fdset/1",
              fdSets: [{ fd: 3, set: 1 }, { fd: 4, set: 1 }],
              ramPath: file(snapshotFiles.ram),
              ramShared: true,
              qmpPath: file("qmp.sock"),
              consoleLogPath: file("console.log"),
              controlPath: file("ctl.sock"),
              runAs,
              incoming: false,
            }),
          }).pipe(Effect.mapError((e) => fail(e.message, e.detail)))
          yield* phase("started")
          const withDiagnostics = <A, E extends { readonly message: string }, R>(eff: Effect.Effect<A, E, R>) =>
            eff.pipe(Effect.catch((e) => Effect.flatMap(q.diagnostics, (d) => Effect.fail(fail(e.message, d)))))

          // 1. boot, install the agent, run setup; the SSH connection is closed before the pause
          yield* Effect.scoped(
            Effect.gen(function* () {
              const shell = yield* connectGuestShell({
                dialer,
                host: o.net.guestIp,
                hostKeyBlob: image.hostKeyBlob,
                privateKey: key.privateKey,
                readyTimeoutMs: 90_000,
              })
              yield* phase("booted")
              yield* shell.writeFile(restoreHelperPath, yield* Effect.promise(() => fs.readFile(helper)), {
                mode: 0o700,
              })
              yield* shell.writeFile(agentPath, agentScript, { mode: 0o700 })
              // The port appears asynchronously after insmod; the agent must find it at start.
              const agent = yield* shell.run(
                [
                  "set -e",
                  "[ -d /sys/module/virtio_console ] || insmod /lib/modules/virtio_console.ko",
                  `for i in $(seq 100); do grep -qx ${controlPortName} /sys/class/virtio-ports/*/name 2>/dev/null && break; sleep 0.02; done`,
                  `grep -qx ${controlPortName} /sys/class/virtio-ports/*/name`,
                  `setsid ${agentPath} </dev/null >/dev/null 2>&1 &`,
                ].join("\n"),
                { profile: false },
              )
              if (agent.exitCode !== 0) return yield* fail(`starting the guest agent failed: ${agent.stderr.trim()}`)
              if (o.setup !== undefined) {
                const guestStep = (what: string, command: string | undefined) =>
                  command === undefined ? Effect.void : shell.run(command, { profile: false }).pipe(
                    Effect.flatMap((r) =>
                      r.exitCode === 0 ? Effect.void : Effect.fail(fail(`${what} failed`, r.stderr.slice(-2000)))
                    ),
                  )
                yield* guestStep("preparing the setup network", o.beforeSetup)
                const r = yield* shell.run("sh -s", { stdin: o.setup })
                if (r.exitCode !== 0) {
                  return yield* fail(
                    `setup script exited ${r.exitCode}`,
                    `${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`,
                  )
                }
                yield* guestStep("removing the setup network", o.afterSetup)
                yield* phase("setup")
              }
              yield* shell.run("sync", { profile: false })
            }).pipe(withDiagnostics),
          )

          // 2. the agent must answer before we trust the snapshot with it
          const agent = yield* connectGuestAgent(file("ctl.sock")).pipe(withDiagnostics)
          const nonce = randomBytes(8).toString("hex")
          const pong = yield* agent.request(`ping ${nonce}`, 20_000).pipe(withDiagnostics)
          if (pong !== `pong ${nonce}`) return yield* fail(`guest agent answered "${pong}"`)
          yield* phase("agent")

          // 3. pause, then save device state only (RAM is already in the shared file)
          const qmp = (cmd: string, args?: Record<string, unknown>) => withDiagnostics(q.qmp.execute(cmd, args))
          yield* qmp("stop")
          yield* qmp("migrate-set-capabilities", {
            capabilities: [{ capability: "x-ignore-shared", state: true }],
          })
          yield* qmp("migrate-set-parameters", { "max-bandwidth": 64 * 1024 ** 3 })
          yield* qmp("migrate", { uri: `exec:cat > ${path.join(saveDir, snapshotFiles.state)}` })
          for (;;) {
            const m = (yield* qmp("query-migrate")) as { status?: string; "error-desc"?: string }
            if (m.status === "completed") break
            if (m.status === "failed" || m.status === "cancelled") {
              const d = yield* q.diagnostics
              return yield* fail(`saving device state: ${m.status} ${m["error-desc"] ?? ""}`, d)
            }
            yield* Effect.sleep(5)
          }
          yield* Effect.promise(() => fs.copyFile(path.join(saveDir, snapshotFiles.state), file(snapshotFiles.state)))
          yield* phase("saved")
        })

        return yield* Effect.acquireUseRelease(
          Effect.promise(() => fs.mkdir(tmp, { recursive: true, mode: 0o700 })),
          () =>
            Effect.gen(function* () {
              yield* Effect.scoped(source)
              const size = (f: string) =>
                Effect.promise(() => fs.stat(file(f))).pipe(Effect.map((s) => ({ file: f, bytes: s.size })))
              const manifest: SnapshotManifest = {
                format: snapshotFormat,
                name: o.name,
                createdAt: new Date().toISOString(),
                image: {
                  name: image.name,
                  inputHash: image.manifest.inputHash,
                  rootfsSha256: image.manifest.artefacts.rootfs.sha256,
                  kernelSha256: image.manifest.artefacts.kernel.sha256,
                  initrdSha256: image.manifest.artefacts.initrd.sha256,
                },
                memoryMB: spec.memoryMB,
                vcpus: spec.vcpus,
                accelerator: spec.accelerator,
                cmdline: spec.cmdline,
                devices: deviceSignature(spec),
                macPlan: { guestMac: spec.guestMac, hostMac },
                qemuVersion: yield* qemuVersion,
                setupSha256: createHash("sha256").update(o.setup ?? "").digest("hex"),
                files: {
                  state: yield* size(snapshotFiles.state),
                  ram: yield* size(snapshotFiles.ram),
                  disk: yield* size(snapshotFiles.disk),
                },
                buildMs: { ...buildMs, total: Date.now() - started },
              }
              yield* Effect.promise(async () => {
                for (const f of ["qmp.sock", "ctl.sock", "qemu.log", "console.log"]) {
                  await fs.rm(file(f), { force: true })
                }
                // Clones only ever read these; the RAM file in particular must never change again.
                for (const f of [snapshotFiles.state, snapshotFiles.ram, snapshotFiles.disk]) {
                  await fs.chmod(file(f), 0o400)
                }
                await fs.writeFile(file(snapshotFiles.manifest), `${JSON.stringify(manifest, null, 2)}\n`)
                const final = path.join(dir, o.name)
                const old = path.join(dir, `.old-${o.name}-${randomBytes(4).toString("hex")}`)
                await fs.rename(final, old).catch(() => undefined)
                await fs.rename(tmp, final)
                await fs.rm(old, { recursive: true, force: true })
              })
              return manifest
            }),
          () => Effect.promise(() => fs.rm(tmp, { recursive: true, force: true })),
        )
      })
      return SnapshotBuilder.of({ build, dir })
    }),
  )
}

const qemuVersion = runHostCommand("qemu-system-x86_64", ["--version"]).pipe(
  Effect.map((r) => r.stdout.split("\n")[0]!.trim()),
  Effect.orElseSucceed(() => "unknown"),
)
