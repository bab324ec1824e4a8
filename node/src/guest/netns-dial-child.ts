/**
 * Runs inside a network namespace (`ip netns exec NS node netns-dial-child.ts`) and dials TCP
 * for its parent: each connected socket's file descriptor is passed back over the IPC channel,
 * so the parent talks to guests in that namespace without leaving its own.
 */
import * as net from "node:net"

interface DialRequest {
  readonly id: number
  readonly host: string
  readonly port: number
  readonly timeoutMs: number
}

process.on("message", (raw: unknown) => {
  const req = raw as DialRequest
  const socket = net.connect({ host: req.host, port: req.port })
  const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${req.timeoutMs} ms`)), req.timeoutMs)
  socket.once("connect", () => {
    clearTimeout(timer)
    socket.pause()
    process.send!({ id: req.id, ok: true }, socket, {}, () => socket.destroy())
  })
  socket.once("error", (e) => {
    clearTimeout(timer)
    process.send!({ id: req.id, ok: false, error: e.message })
  })
})
process.on("disconnect", () => process.exit(0))
process.send!({ ready: true })
