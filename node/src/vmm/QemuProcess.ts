import { Deferred, Effect, Option } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { connectQmp } from "./Qmp.ts"
import type { Qmp } from "./Qmp.ts"
import { VmStartError } from "./Vmm.ts"
import { runHostCommand } from "../HostCommand.ts"
import { NodeTeardown } from "../NodeTeardown.ts"

const stopGraceMs = 2_000
const qmpTimeoutMs = 10_000

export interface QemuProcess {
  readonly pid: number
  readonly qmp: Qmp
  readonly exited: Effect.Effect<number | null>
  readonly running: () => boolean
  /** QEMU stderr + console tails, for error messages. */
  readonly diagnostics: Effect.Effect<string>
}

/**
 * One QEMU process in a scope, as QemuMicrovm runs it (netns, log files, QMP, quit then SIGKILL
 * after one grace period), plus inherited file descriptors from `fds` (fd 3, 4, …): a restore
 * reads its device state from fd 3 (`migrate-incoming fd:3`), so QEMU can drop to `nobody`
 * and still read a snapshot in a root-only directory.
 */
export const launchQemu = (o: {
  readonly sessionId: string
  readonly netns: string | undefined
  readonly argv: ReadonlyArray<string>
  readonly qmpPath: string
  readonly stderrPath: string
  readonly consoleLogPath: string
  readonly fds?: ReadonlyArray<number>
  /** What QEMU is started through (QemuLauncher: paws-nothp); empty or unset: started directly. */
  readonly launcher?: ReadonlyArray<string>
}): Effect.Effect<QemuProcess, VmStartError, Scope.Scope> =>
  Effect.gen(function* () {
    const fail = (message: string, detail?: string) =>
      new VmStartError({ sessionId: o.sessionId, message, ...(detail === undefined ? {} : { detail }) })
    const direct = o.netns
      ? ["ip", "netns", "exec", o.netns, "qemu-system-x86_64", ...o.argv]
      : ["qemu-system-x86_64", ...o.argv]
    const [command, ...args] = [...(o.launcher ?? []), ...direct] as [string, ...Array<string>]
    const exited = yield* Deferred.make<number | null>()
    const qmpRef: { current?: Qmp } = {}
    const teardown = Option.getOrUndefined(yield* Effect.serviceOption(NodeTeardown))
    const child = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const log = await fs.open(o.stderrPath, "w")
          try {
            const c = spawn(command, args, { stdio: ["ignore", log.fd, log.fd, ...(o.fds ?? [])] })
            c.on("exit", (code) => Deferred.doneUnsafe(exited, Effect.succeed(code)))
            await new Promise<void>((resolve, reject) => {
              c.once("spawn", resolve)
              c.once("error", reject)
            })
            if (c.pid !== undefined) teardown?.addQemu(c.pid)
            return c
          } finally {
            await log.close()
          }
        },
        catch: (e) => fail(`cannot spawn ${command}: ${(e as Error).message}`),
      }),
      (c) =>
        Effect.gen(function* () {
          const qmp = qmpRef.current
          // A stopping node SIGKILLed every QEMU already: no quit, no grace period.
          if (teardown?.draining() === true) c.kill("SIGKILL")
          const done = yield* Effect.gen(function* () {
            if (qmp && teardown?.draining() !== true && c.exitCode === null && c.signalCode === null) {
              yield* qmp.execute("quit").pipe(Effect.ignore)
            }
            return yield* Deferred.await(exited)
          }).pipe(Effect.timeoutOption(stopGraceMs))
          if (Option.isNone(done)) {
            c.kill("SIGKILL")
            yield* Deferred.await(exited)
          }
          if (qmp) yield* qmp.close
          if (c.pid !== undefined) teardown?.dropQemu(c.pid)
        }),
    )
    if (child.pid === undefined) return yield* fail("QEMU has no pid")
    const running = () => child.exitCode === null && child.signalCode === null
    const readText = (p: string) => Effect.promise(() => fs.readFile(p, "utf8").catch(() => ""))
    const diagnostics = Effect.all([readText(o.stderrPath), readText(o.consoleLogPath)]).pipe(
      Effect.map(([err, con]) => `${err.slice(-2000)}\n--- console ---\n${con.slice(-2000)}`),
    )
    const qmp = yield* connectQmp(o.qmpPath, {
      timeoutMs: qmpTimeoutMs,
      gaveUp: () => (running() ? undefined : `QEMU exited (${child.exitCode})`),
    }).pipe(Effect.catch((e) => Effect.flatMap(diagnostics, (d) => Effect.fail(fail(e.message, d)))))
    qmpRef.current = qmp
    return { pid: child.pid, qmp, exited: Deferred.await(exited), running, diagnostics }
  })

/** `dir/name` resolved, for QEMU arguments (QEMU resolves relative paths against its own cwd). */
export const inDir = (dir: string, name: string) => path.resolve(dir, name)

/** The first line of `qemu-system-x86_64 --version`, recorded in each snapshot's manifest. */
export const qemuVersion = runHostCommand("qemu-system-x86_64", ["--version"]).pipe(
  Effect.map((r) => r.stdout.split("\n")[0]!.trim()),
  Effect.orElseSucceed(() => "unknown"),
)
