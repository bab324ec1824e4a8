import { Cause, Effect, Queue, Stream } from "effect"
import { LiveSessionError } from "@paws/core"
import * as http from "node:http"
import type { Dialer } from "../guest/NetnsDialer.ts"

export type ForwardChunk =
  | { readonly _tag: "head"; readonly status: number; readonly headers: ReadonlyArray<readonly [string, string]> }
  | { readonly _tag: "body"; readonly data: Uint8Array }

export interface ForwardRequest {
  readonly port: number
  readonly method: string
  readonly path: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array
}

/** Per hop, not end to end (RFC 9110 §7.6.1): never relayed. */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
])

const dialTimeoutMs = 5_000

/**
 * One HTTP request to `guestIp:port`, dialled by the node inside its netns (the firewall accepts
 * replies to connections the host opens; the guest still cannot open any). The response head,
 * then its body as it arrives (SSE included); interrupting the stream closes the connection.
 */
export const forwardToGuest = (
  dialer: Dialer,
  guestIp: string,
  request: ForwardRequest,
): Stream.Stream<ForwardChunk, LiveSessionError> =>
  Stream.callback<ForwardChunk, LiveSessionError>((queue) =>
    Effect.gen(function* () {
      const socket = yield* dialer.dial(guestIp, request.port, dialTimeoutMs).pipe(
        Effect.mapError((e) =>
          new LiveSessionError({
            reason: "guest",
            message: `nothing answers on guest port ${request.port}: ${e.message}`,
          })
        ),
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
      const fail = (e: Error) =>
        Queue.failCauseUnsafe(
          queue,
          Cause.fail(new LiveSessionError({ reason: "guest", message: `guest port ${request.port}: ${e.message}` })),
        )
      const headers: Record<string, string | Array<string>> = {}
      for (const [k, v] of request.headers) {
        const name = k.toLowerCase()
        if (hopByHop.has(name)) continue
        const prev = headers[name]
        headers[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
      }
      const req = http.request({
        createConnection: () => socket,
        method: request.method,
        path: request.path,
        headers: { ...headers, connection: "close" },
      })
      req.on("response", (res) => {
        const out: Array<readonly [string, string]> = []
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          if (!hopByHop.has(res.rawHeaders[i]!.toLowerCase())) out.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!])
        }
        Queue.offerUnsafe(queue, { _tag: "head", status: res.statusCode ?? 502, headers: out })
        res.on("data", (d: Buffer) => void Queue.offerUnsafe(queue, { _tag: "body", data: new Uint8Array(d) }))
        res.on("end", () => void Queue.endUnsafe(queue))
        res.on("error", fail)
      })
      req.on("error", fail)
      req.end(Buffer.from(request.body))
    })
  )
