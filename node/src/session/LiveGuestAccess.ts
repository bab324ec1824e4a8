import { Effect, Option, Stream } from "effect"
import { LiveSessionError, NodeSessionNotFound } from "@paws/core"
import type { Dialer } from "../guest/NetnsDialer.ts"
import type { TerminalSize } from "../guest/GuestShell.ts"
import type { makeGuestActivity } from "./GuestActivity.ts"
import { makeGuestPtys } from "./GuestPtys.ts"
import { execInGuest, readGuestFile, writeGuestFile } from "./LiveGuest.ts"
import { type ForwardRequest, forwardToGuest } from "./PortForward.ts"
import { makePortSockets } from "./PortSockets.ts"
import type { LiveGuestChannel } from "./SessionRunner.ts"

/**
 * The ways into a running session's guest (exec, files, forwarded ports, WebSockets, shells): each
 * through the guest channel its runner registers (`onGuest`) once the guest is prepared, each
 * counted as the session's traffic. `isLive`: whether the session is admitted here (a session
 * not yet prepared gets "starting", not "no live session").
 */
export const makeLiveGuestAccess = (
  isLive: (sessionId: string) => boolean,
  activity: ReturnType<typeof makeGuestActivity>,
  dialer: Option.Option<Dialer>,
) => {
  /** The guest channel of each session whose guest is prepared; gone when its VM is released. */
  const shells = new Map<string, LiveGuestChannel>()
  const portSockets = makePortSockets()
  const ptys = makeGuestPtys()
  const traffic = activity.traffic
  const noDialer = () => new LiveSessionError({ reason: "guest", message: "this node cannot dial guests" })
  const guestOf = (sessionId: string) =>
    Effect.suspend(() => {
      const shell = shells.get(sessionId)
      if (shell !== undefined) return Effect.succeed(shell)
      const message = isLive(sessionId)
        ? `session ${sessionId} is starting; its guest is not ready yet`
        : `no live session ${sessionId}`
      return Effect.fail(new NodeSessionNotFound({ sessionId, message }))
    })
  const shellOf = (sessionId: string) =>
    Effect.map(guestOf(sessionId), (g) => {
      activity.touch(sessionId)
      return g.shell
    })
  const dialled = <A>(
    sessionId: string,
    open: (dialer: Dialer, guestIp: string) => Stream.Stream<A, LiveSessionError>,
  ) =>
    traffic(
      sessionId,
      Stream.unwrap(
        Effect.map(guestOf(sessionId), (g) =>
          Option.isNone(dialer) ? Stream.fail(noDialer()) : open(dialer.value, g.guestIp)),
      ),
    )

  return {
    onGuest: (sessionId: string, guest: LiveGuestChannel) =>
      Effect.acquireRelease(
        Effect.sync(() => void shells.set(sessionId, guest)),
        () => Effect.sync(() => void shells.delete(sessionId)),
      ),
    hasGuest: (sessionId: string) => shells.has(sessionId),
    exec: (sessionId: string, command: ReadonlyArray<string>, stdin: string | undefined) =>
      traffic(sessionId, Stream.unwrap(Effect.map(shellOf(sessionId), (shell) => execInGuest(shell, command, stdin)))),
    readFile: (sessionId: string, path: string) =>
      Effect.flatMap(shellOf(sessionId), (shell) => readGuestFile(shell, path)),
    writeFile: (sessionId: string, path: string, data: Uint8Array) =>
      Effect.flatMap(shellOf(sessionId), (shell) => writeGuestFile(shell, path, data)),
    forward: (sessionId: string, request: ForwardRequest) =>
      dialled(sessionId, (d, guestIp) => forwardToGuest(d, guestIp, request)),
    openSocket: (
      sessionId: string,
      request: { readonly port: number; readonly socketId: string; readonly path: string; readonly cookie?: string },
    ) => dialled(sessionId, (d, guestIp) => portSockets.open(d, guestIp, request)),
    sendSocket: portSockets.send,
    openShell: (sessionId: string, shellId: string, size: TerminalSize) =>
      traffic(sessionId, Stream.unwrap(Effect.map(guestOf(sessionId), (g) => ptys.open(g.shell, shellId, size)))),
    shellInput: ptys.input,
  }
}
