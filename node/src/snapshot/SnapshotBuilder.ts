import { Context, Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { installAgent, runSetupScript } from "../guest/AgentInstall.ts"
import { connectGuestShell } from "../guest/GuestShell.ts"
import { NetnsDialer } from "../guest/NetnsDialer.ts"
import { NodeSshKey } from "../guest/NodeSshKey.ts"
import { ImageStore } from "../image/ImageStore.ts"
import { tscArgs } from "../vmm/AccelProbe.ts"
import { Vmm } from "../vmm/Vmm.ts"
import { buildRestoreHelper, connectGuestAgent } from "./GuestAgent.ts"
import { snapshotCmdline } from "../vmm/MachineArgs.ts"
import type { MachineSpec } from "../vmm/MachineArgs.ts"
import { SnapshotBuildError, snapshotDirConfig, snapshotFiles, validSnapshotName } from "./SnapshotManifest.ts"
import type { SnapshotManifest } from "./SnapshotManifest.ts"
import { describeSnapshot, publishSnapshot } from "./SnapshotPublish.ts"

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
        const sessionId = `0190f000-0000-7000-8000-${randomBytes(6).toString("hex")}`

        const source = Effect.gen(function* () {
          // QEMU drops to nobody (the setup script is user code).
          const vm = yield* vmm.bootSource({
            sessionId,
            dir: tmp,
            files: snapshotFiles,
            baseDisk: image.rootfsPath,
            spec,
            tap: o.net.tap,
          }).pipe(Effect.mapError((e) => fail(e.message, e.detail)))
          const q = vm.process
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
              yield* installAgent(shell, yield* Effect.promise(() => fs.readFile(helper)))
              if (o.setup !== undefined) {
                yield* runSetupScript(shell, { setup: o.setup, beforeSetup: o.beforeSetup, afterSetup: o.afterSetup })
                yield* phase("setup")
              }
              yield* shell.run("sync", { profile: false })
            }).pipe(
              Effect.catchTag("GuestStepFailed", (e) => Effect.fail(fail(e.message, e.detail))),
              withDiagnostics,
            ),
          )

          // 2. the agent must answer before we trust the snapshot with it
          const agent = yield* connectGuestAgent(vm.controlPath).pipe(withDiagnostics)
          const nonce = randomBytes(8).toString("hex")
          const pong = yield* agent.request(`ping ${nonce}`, 20_000).pipe(withDiagnostics)
          if (pong !== `pong ${nonce}`) return yield* fail(`guest agent answered "${pong}"`)
          yield* phase("agent")

          // 3. pause, then save device state only (RAM is already in the shared file)
          yield* vmm.save(vm).pipe(Effect.mapError((e) => fail(e.message, e.detail)))
          yield* phase("saved")
        })

        return yield* Effect.acquireUseRelease(
          Effect.promise(() => fs.mkdir(tmp, { recursive: true, mode: 0o700 })),
          () =>
            Effect.gen(function* () {
              yield* Effect.scoped(source)
              const manifest = yield* describeSnapshot({
                name: o.name,
                buildDir: tmp,
                image,
                spec,
                setup: o.setup,
                buildMs: { ...buildMs, total: Date.now() - started },
              })
              yield* publishSnapshot(dir, tmp, manifest)
              return manifest
            }),
          () => Effect.promise(() => fs.rm(tmp, { recursive: true, force: true })),
        )
      })
      return SnapshotBuilder.of({ build, dir })
    }),
  )
}
