import { Deferred, Effect, Stream } from "effect"
import { LiveSessionError } from "@paws/core"
import type { GuestPty, GuestShell, TerminalSize } from "../guest/GuestShell.ts"

const guestError = (message: string) => new LiveSessionError({ reason: "guest", message })
const openWaitMs = 10_000

/**
 * Interactive shells (`paws shell`) by id: the output streams back over one RPC, keystrokes and
 * resizes arrive over others, possibly before the open has run here, so both meet at a Deferred.
 */
export const makeGuestPtys = () => {
  const ptys = new Map<string, Deferred.Deferred<GuestPty, LiveSessionError>>()
  const slot = (id: string) => {
    let d = ptys.get(id)
    if (d === undefined) ptys.set(id, d = Deferred.makeUnsafe<GuestPty, LiveSessionError>())
    return d
  }

  /** The terminal's output, then (when the guest told it) one last element with the shell's exit status. */
  const open = (
    shell: GuestShell,
    shellId: string,
    size: TerminalSize,
  ): Stream.Stream<{ readonly data: Uint8Array; readonly exitCode?: number }, LiveSessionError> =>
    Stream.unwrap(Effect.gen(function* () {
      const ready = slot(shellId)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          ptys.delete(shellId)
          Deferred.doneUnsafe(ready, Effect.fail(guestError("the shell is closed")))
        })
      )
      if (shell.pty === undefined) return yield* guestError("this VM has no PTY channel: use paws exec")
      const pty = yield* shell.pty(size).pipe(Effect.mapError((e) => guestError(e.message)))
      Deferred.doneUnsafe(ready, Effect.succeed(pty))
      return pty.output.pipe(
        Stream.map((data) => ({ data })),
        Stream.concat(Stream.suspend(() => {
          const exitCode = pty.exitCode()
          return exitCode === undefined ? Stream.empty : Stream.make({ data: new Uint8Array(0), exitCode })
        })),
      )
    }))

  const input = (shellId: string, data: Uint8Array | undefined, resize: TerminalSize | undefined) =>
    Deferred.await(slot(shellId)).pipe(
      Effect.timeoutOrElse({
        duration: openWaitMs,
        orElse: () =>
          Effect.sync(() => {
            if (ptys.get(shellId)?.pipe((d) => Deferred.isDoneUnsafe(d)) === false) ptys.delete(shellId)
          }).pipe(Effect.andThen(Effect.fail(guestError(`no open shell ${shellId}`)))),
      }),
      Effect.map((pty) => {
        if (data !== undefined) pty.write(data)
        if (resize !== undefined) pty.resize(resize)
      }),
    )

  return { open, input }
}
