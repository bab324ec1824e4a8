import { Cause, Deferred, Effect, Queue, Stream } from "effect"
import { LiveSessionError, type PortSocketMessage } from "@paws/core"
import WebSocket from "ws"
import type { Dialer } from "../guest/NetnsDialer.ts"

const guestError = (message: string) => new LiveSessionError({ reason: "guest", message })
const openWaitMs = 10_000

/**
 * WebSockets to exposed guest ports. The node is the WebSocket client (its socket dialled in its
 * netns); control relays the browser's side. Messages for a socket may arrive before its open
 * has run on this node (separate RPCs), so each id's socket is a Deferred both sides meet at.
 */
export const makePortSockets = () => {
  const sockets = new Map<string, Deferred.Deferred<WebSocket, LiveSessionError>>()
  const slot = (id: string) => {
    let d = sockets.get(id)
    if (d === undefined) sockets.set(id, d = Deferred.makeUnsafe<WebSocket, LiveSessionError>())
    return d
  }

  const open = (
    dialer: Dialer,
    guestIp: string,
    request: { readonly port: number; readonly socketId: string; readonly path: string; readonly cookie?: string },
  ): Stream.Stream<PortSocketMessage, LiveSessionError> =>
    Stream.callback<PortSocketMessage, LiveSessionError>((queue) =>
      Effect.gen(function* () {
        const ready = slot(request.socketId)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            sockets.delete(request.socketId)
            Deferred.doneUnsafe(ready, Effect.fail(guestError("the port socket is closed")))
          })
        )
        const socket = yield* dialer.dial(guestIp, request.port, 5_000).pipe(
          Effect.mapError((e) => guestError(`nothing answers on guest port ${request.port}: ${e.message}`)),
        )
        const ws = new WebSocket(`ws://localhost:${request.port}${request.path}`, {
          createConnection: () => socket,
          ...(request.cookie === undefined ? {} : { headers: { cookie: request.cookie } }),
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => ws.terminate()))
        const failed = (e: Error) => Queue.failCauseUnsafe(queue, Cause.fail(guestError(e.message)))
        ws.on("open", () => Deferred.doneUnsafe(ready, Effect.succeed(ws)))
        ws.on("message", (data: Buffer, isBinary: boolean) =>
          void Queue.offerUnsafe(queue, { data: new Uint8Array(data), text: !isBinary }))
        ws.on("close", () =>
          void Queue.endUnsafe(queue))
        ws.on("error", failed)
      })
    )

  const send = (socketId: string, message: PortSocketMessage) =>
    Deferred.await(slot(socketId)).pipe(
      Effect.timeoutOrElse({
        duration: openWaitMs,
        orElse: () =>
          Effect.sync(() => {
            // never opened here: forget the id rather than keep its slot
            if (sockets.get(socketId)?.pipe((d) => Deferred.isDoneUnsafe(d)) === false) sockets.delete(socketId)
          }).pipe(Effect.andThen(Effect.fail(guestError(`no open port socket ${socketId}`)))),
      }),
      Effect.flatMap((ws) =>
        Effect.callback<void, LiveSessionError>((resume) => {
          ws.send(
            message.text ? Buffer.from(message.data).toString("utf8") : message.data,
            (e) => resume(e ? Effect.fail(guestError(e.message)) : Effect.void),
          )
        })
      ),
    )

  return { open, send }
}
