import * as dgram from "node:dgram"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import * as tls from "node:tls"

/** Raw socket pokes for the listener fuzz tests: send bytes, see what (if anything) comes back. */

export interface Poke {
  readonly reply: Buffer
  /** The server closed the connection (as opposed to us giving up after `waitMs`). */
  readonly closedByServer: boolean
}

/** Connects, writes `bytes`, half-closes unless `hold`, and waits up to `waitMs` for the server to close. */
export const poke = (port: number, bytes: Uint8Array, options: { hold?: boolean; waitMs?: number } = {}) =>
  new Promise<Poke>((resolve) => {
    const chunks: Array<Buffer> = []
    const socket = net.connect(port, "127.0.0.1")
    let done = false
    const finish = (closedByServer: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ reply: Buffer.concat(chunks), closedByServer })
    }
    const timer = setTimeout(() => finish(false), options.waitMs ?? 2_000)
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", () => finish(true))
    socket.on("close", () => finish(true))
    socket.on("connect", () => {
      if (options.hold) socket.write(bytes)
      else socket.end(bytes)
    })
  })

/** Like `poke`, inside a TLS connection to `servername` that trusts `caPem`. */
export const pokeTls = (port: number, servername: string, caPem: string, bytes: Uint8Array, waitMs = 3_000) =>
  new Promise<Poke>((resolve) => {
    const chunks: Array<Buffer> = []
    const socket = tls.connect({ port, host: "127.0.0.1", servername, ca: caPem })
    let done = false
    const finish = (closedByServer: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ reply: Buffer.concat(chunks), closedByServer })
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", () => finish(true))
    socket.on("close", () => finish(true))
    socket.on("secureConnect", () => socket.end(bytes))
  })

/** The first flight of a real TLS client (its ClientHello record) for `servername`. */
export const captureClientHello = (servername: string): Promise<Buffer> =>
  new Promise((resolve) => {
    const server = net.createServer((s) =>
      s.once("data", (hello: Buffer) => {
        s.destroy()
        server.close()
        resolve(hello)
      })
    )
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      tls.connect({ port, host: "127.0.0.1", servername, rejectUnauthorized: false }).on("error", () => {})
    })
  })

/** A UDP client that sends a packet and waits for an answer whose first two bytes (DNS id) are `id`. */
export const udpAnswer = (port: number, packet: Buffer, id: number, timeoutMs = 2_000): Promise<Buffer | undefined> =>
  new Promise((resolve) => {
    const socket = dgram.createSocket("udp4")
    const timer = setTimeout(() => {
      socket.close()
      resolve(undefined)
    }, timeoutMs)
    socket.on("message", (msg) => {
      if (msg.length < 2 || msg.readUInt16BE(0) !== id) return
      clearTimeout(timer)
      socket.close()
      resolve(msg)
    })
    socket.send(packet, port, "127.0.0.1")
  })

/** Fire-and-forget UDP datagram. */
export const udpSend = (port: number, packet: Uint8Array): Promise<void> =>
  new Promise((resolve) => {
    const socket = dgram.createSocket("udp4")
    socket.send(packet, port, "127.0.0.1", () => {
      socket.close()
      resolve()
    })
  })

/** Resident set size of a process in KiB (Linux). */
export const rssKiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
}
