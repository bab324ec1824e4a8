import * as tls from "node:tls"
import type { AddressInfo } from "node:net"
import { makeCertificateAuthority } from "../../src/CertificateAuthority.ts"
import { makeLeafCertificateCache } from "../../src/LeafCertificateCache.ts"

/** One request as this upstream's own parser framed it, on the connection it arrived on. */
export interface RawRequest {
  readonly connection: number
  readonly method: string
  readonly path: string
  readonly head: string
  readonly body: string
}

export interface RawUpstream {
  readonly port: number
  readonly caPem: string
  /** Every byte each connection delivered, by connection number: what left the proxy, exactly. */
  readonly bytes: Map<number, string>
  readonly requests: Array<RawRequest>
  readonly allBytes: () => string
  readonly close: () => Promise<void>
}

const headerOf = (head: string, name: string): string | undefined => {
  const line = head.split("\r\n").find((l) => l.toLowerCase().startsWith(name + ":"))
  return line?.slice(name.length + 1).trim()
}

/** Decodes one chunked body at the start of `buf`; undefined until it is complete. */
const chunked = (buf: string): { body: string; used: number } | undefined => {
  let at = 0
  let body = ""
  for (;;) {
    const eol = buf.indexOf("\r\n", at)
    if (eol === -1) return undefined
    const size = Number.parseInt(buf.slice(at, eol), 16)
    if (size === 0) return buf.startsWith("\r\n", eol + 2) ? { body, used: eol + 4 } : undefined
    if (buf.length < eol + 2 + size + 2) return undefined
    body += buf.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

/**
 * A deliberately naive keep-alive HTTPS upstream that reflects each request it parses (head and
 * body) as the response body — the endpoint a smuggling attack needs. `/early` answers as soon as
 * its head arrives and then parses whatever follows as the next request (a server that does not
 * read bodies): the worst upstream a proxy must stay safe with. Upgrade requests get a 403.
 */
export const startRawUpstream = async (): Promise<RawUpstream> => {
  const ca = await makeCertificateAuthority()
  const leaves = makeLeafCertificateCache(ca)
  const bytes = new Map<number, string>()
  const requests: Array<RawRequest> = []
  const sockets = new Set<tls.TLSSocket>()
  let next = 0
  const server = tls.createServer({ SNICallback: leaves.sniCallback }, (socket) => {
    const connection = next++
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    let buf = ""
    const respond = (text: string, status = "200 OK") =>
      socket.write(
        `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
      )
    socket.on("data", (chunk: Buffer) => {
      bytes.set(connection, (bytes.get(connection) ?? "") + chunk.toString("latin1"))
      buf += chunk.toString("latin1")
      for (;;) {
        const end = buf.indexOf("\r\n\r\n")
        if (end === -1) return
        const head = buf.slice(0, end)
        const [method = "", path = ""] = head.split(" ")
        const rest = buf.slice(end + 4)
        let body = ""
        let used = 0
        if (path === "/early") {
          respond("early") // and the body stays in `buf`, to be parsed as the next request
        } else if (/chunked/i.test(headerOf(head, "transfer-encoding") ?? "")) {
          const decoded = chunked(rest)
          if (!decoded) return
          ;({ body, used } = decoded)
        } else {
          const length = Number(headerOf(head, "content-length") ?? "0")
          if (rest.length < length) return
          body = rest.slice(0, length)
          used = length
        }
        buf = rest.slice(used)
        requests.push({ connection, method, path, head, body })
        if (path === "/early") continue
        if (/upgrade/i.test(headerOf(head, "connection") ?? "")) respond("no upgrades here", "403 Forbidden")
        else respond(`${head}\r\n\r\n${body}`)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: (server.address() as AddressInfo).port,
    caPem: ca.certificatePem,
    bytes,
    requests,
    allBytes: () => [...bytes.values()].join("\n"),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
