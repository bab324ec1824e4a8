import { Data, Effect, Schema } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { runHostCommand } from "../HostCommand.ts"
import type { Snapshot } from "../snapshot/SnapshotManifest.ts"
import type { VmHandle } from "../vmm/Vmm.ts"

/**
 * Paused sessions on this node's disk, one dir each (`<data>/paused/<sessionId>/`): the VM's
 * migration stream (memory + device state), its disk as a qcow2 over its snapshot's disk, and a
 * manifest. They outlive the node process, so a restarted node still resumes them; a resume
 * loads them through the snapshot restore path (SnapshotRestore.load), the RAM file being the
 * snapshot's own mapped privately, every page then overwritten from the stream.
 */
export const PausedManifest = Schema.Struct({
  sessionId: Schema.String,
  /** The snapshot the VM was cloned from, and when it was made: a rebuilt snapshot cannot back this disk. */
  snapshot: Schema.String,
  snapshotCreatedAt: Schema.String,
  pausedAt: Schema.String,
  /** Running time spent before this pause: paused time does not count toward the session's timeout. */
  usedMs: Schema.Number,
  /** A keepAlive script's outcome, once it finished before the pause: the session ends with it. */
  script: Schema.optionalKey(Schema.Struct({
    status: Schema.Literals(["completed", "failed", "timeout"]),
    exitCode: Schema.NullOr(Schema.Number),
  })),
})
export type PausedManifest = typeof PausedManifest.Type

export const pausedFiles = { state: "vm.mig", disk: "disk.qcow2", manifest: "manifest.json" } as const

export class PauseFailed extends Data.TaggedError("PauseFailed")<{ readonly message: string }> {}

const validId = (id: string) => /^[0-9a-f-]{36}$/.test(id)

export const makePausedVms = (root: string) => {
  const dirOf = (sessionId: string) => path.join(root, sessionId)

  const read = (sessionId: string) =>
    Effect.promise(async () => {
      if (!validId(sessionId)) return undefined
      const text = await fs.readFile(path.join(dirOf(sessionId), pausedFiles.manifest), "utf8").catch(() => undefined)
      if (text === undefined) return undefined
      try {
        return Schema.decodeUnknownSync(PausedManifest)(JSON.parse(text))
      } catch {
        return undefined
      }
    })

  /** The ids of every paused session whose manifest is readable. */
  const list = Effect.promise(async () => {
    const names = await fs.readdir(root).catch(() => [] as Array<string>)
    return names.filter(validId)
  }).pipe(
    Effect.flatMap((ids) => Effect.forEach(ids, (id) => Effect.map(read(id), (m) => (m === undefined ? [] : [id])))),
    Effect.map((ids) => ids.flat()),
  )

  const remove = (sessionId: string) =>
    Effect.promise(() =>
      validId(sessionId) ? fs.rm(dirOf(sessionId), { recursive: true, force: true }) : Promise.resolve()
    )

  /** The snapshot as a restore of this paused VM sees it: its own disk and state, the snapshot's RAM file. */
  const asSnapshot = (snapshot: Snapshot, sessionId: string): Snapshot => ({
    ...snapshot,
    diskPath: path.join(dirOf(sessionId), pausedFiles.disk),
    statePath: path.join(dirOf(sessionId), pausedFiles.state),
  })

  /**
   * Stops the VM and saves it: the migration stream (QEMU, as nobody, writes into a scratch dir
   * it owns, as SnapshotVms.save does), then the disk chain above the snapshot's disk flattened
   * into one qcow2. Written to `<id>.saving` and renamed, so a crash mid-save leaves the last
   * good pause (a resumed VM's disk still backs onto it) untouched.
   */
  const save = (vm: VmHandle, snapshot: Snapshot, manifest: PausedManifest) =>
    Effect.gen(function* () {
      const fail = (message: string) => new PauseFailed({ message })
      const qmp = (cmd: string, args?: Record<string, unknown>) =>
        vm.qmp(cmd, args).pipe(Effect.mapError((e) => fail(`${cmd}: ${e.message}`)))
      const saving = `${dirOf(vm.sessionId)}.saving`
      const scratch = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          await fs.rm(saving, { recursive: true, force: true })
          await fs.mkdir(saving, { recursive: true, mode: 0o700 })
          const d = await fs.mkdtemp(path.join(os.tmpdir(), "paws-pause-"))
          if (process.getuid?.() === 0) await fs.chown(d, 65534, 65534)
          return d
        }),
        (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true })),
      )
      yield* qmp("stop")
      // As the restore sets it (the stream format depends on it, both ends must agree); the clone's RAM
      // is a private mapping, not shared, so it is in the stream all the same.
      yield* qmp("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] })
      yield* qmp("migrate-set-parameters", { "max-bandwidth": 64 * 1024 ** 3 })
      yield* qmp("migrate", { uri: `exec:cat > ${path.join(scratch, "state")}` })
      for (;;) {
        const m = (yield* qmp("query-migrate")) as { status?: string; "error-desc"?: string }
        if (m.status === "completed") break
        if (m.status === "failed" || m.status === "cancelled") {
          return yield* fail(`saving the VM: ${m.status} ${m["error-desc"] ?? ""}`)
        }
        yield* Effect.sleep(5)
      }
      yield* Effect.promise(() => fs.copyFile(path.join(scratch, "state"), path.join(saving, pausedFiles.state)))
      // -U: the stopped QEMU still holds the image open; migration has flushed and inactivated it.
      yield* runHostCommand("qemu-img", [
        "convert",
        "-U",
        "-f",
        "qcow2",
        "-O",
        "qcow2",
        "-B",
        snapshot.diskPath,
        "-F",
        "qcow2",
        vm.overlayPath,
        path.join(saving, pausedFiles.disk),
      ]).pipe(Effect.mapError((e) => fail(`saving the disk: ${e.stderr.trim()}`)))
      yield* Effect.promise(async () => {
        await fs.writeFile(path.join(saving, pausedFiles.manifest), JSON.stringify(manifest))
        await fs.rm(dirOf(vm.sessionId), { recursive: true, force: true })
        await fs.rename(saving, dirOf(vm.sessionId))
      })
    }).pipe(Effect.scoped)

  return { root, read, list, remove, save, asSnapshot }
}
export type PausedVms = ReturnType<typeof makePausedVms>
