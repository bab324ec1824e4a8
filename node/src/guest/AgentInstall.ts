import { Data, Effect } from "effect"
import { agentPath, agentScript, restoreHelperPath } from "../snapshot/GuestAgent.ts"
import { controlPortName } from "../vmm/MachineArgs.ts"
import type { GuestShell } from "./GuestShell.ts"

export class GuestStepFailed extends Data.TaggedError("GuestStepFailed")<{
  readonly message: string
  readonly detail?: string
}> {}

/**
 * Installs the restore helper and the guest agent over SSH in a snapshot's source VM and starts the
 * agent on its virtio-serial port (the port appears asynchronously after insmod; the agent must
 * find it at start).
 */
export const installAgent = (shell: GuestShell, restoreHelper: Uint8Array) =>
  Effect.gen(function* () {
    yield* shell.writeFile(restoreHelperPath, restoreHelper, { mode: 0o700 })
    yield* shell.writeFile(agentPath, agentScript, { mode: 0o700 })
    const started = yield* shell.run(
      [
        "set -e",
        "[ -d /sys/module/virtio_console ] || insmod /lib/modules/virtio_console.ko",
        `for i in $(seq 100); do grep -qx ${controlPortName} /sys/class/virtio-ports/*/name 2>/dev/null && break; sleep 0.02; done`,
        `grep -qx ${controlPortName} /sys/class/virtio-ports/*/name`,
        `setsid ${agentPath} </dev/null >/dev/null 2>&1 &`,
      ].join("\n"),
      { profile: false },
    )
    if (started.exitCode !== 0) {
      return yield* new GuestStepFailed({ message: `starting the guest agent failed: ${started.stderr.trim()}` })
    }
  })

/** A snapshot's setup script as root, between the steps that add and remove its network (CA, DNS). */
export const runSetupScript = (
  shell: GuestShell,
  o: { readonly setup: string; readonly beforeSetup?: string | undefined; readonly afterSetup?: string | undefined },
) =>
  Effect.gen(function* () {
    const step = (what: string, command: string | undefined) =>
      command === undefined ? Effect.void : shell.run(command, { profile: false }).pipe(
        Effect.flatMap((r) =>
          r.exitCode === 0
            ? Effect.void
            : Effect.fail(new GuestStepFailed({ message: `${what} failed`, detail: r.stderr.slice(-2000) }))
        ),
      )
    yield* step("preparing the setup network", o.beforeSetup)
    const r = yield* shell.run("sh -s", { stdin: o.setup })
    if (r.exitCode !== 0) {
      return yield* new GuestStepFailed({
        message: `setup script exited ${r.exitCode}`,
        detail: `${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`,
      })
    }
    yield* step("removing the setup network", o.afterSetup)
  })
