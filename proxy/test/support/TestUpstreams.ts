import { spawn } from "node:child_process"
import * as https from "node:https"
import * as zlib from "node:zlib"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { makeCertificateAuthority } from "../../src/CertificateAuthority.ts"
import { makeLeafCertificateCache } from "../../src/LeafCertificateCache.ts"

/** What an upstream saw: tests assert on exactly what left the proxy. */
export interface Received {
  readonly host: string
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string | Array<string> | undefined>
}

export interface TestUpstreams {
  readonly port: number
  readonly caPem: string
  readonly received: Array<Received>
  readonly close: () => Promise<void>
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

/** `git http-backend` as CGI: the repository root is served read/write to requests with `gitAuth`. */
const gitBackend = (root: string, gitAuth: string) => (req: IncomingMessage, res: ServerResponse) => {
  if (req.headers.authorization !== gitAuth) {
    res.writeHead(401, { "www-authenticate": 'Basic realm="git"' })
    return res.end("unauthorized\n")
  }
  const url = new URL(req.url ?? "/", "https://git.test")
  const child = spawn("git", ["http-backend"], {
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      REMOTE_USER: "paws-test",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"]) } : {}),
      ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
    },
    stdio: ["pipe", "pipe", "inherit"],
  })
  req.pipe(child.stdin)
  let head = Buffer.alloc(0)
  let headersDone = false
  child.stdout.on("data", (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk)
    head = Buffer.concat([head, chunk])
    const end = head.indexOf("\r\n\r\n")
    if (end === -1) return
    headersDone = true
    let status = 200
    const headers: Record<string, string> = {}
    for (const line of head.subarray(0, end).toString().split("\r\n")) {
      const i = line.indexOf(":")
      const name = line.slice(0, i).trim().toLowerCase()
      const value = line.slice(i + 1).trim()
      if (name === "status") status = Number.parseInt(value, 10)
      else headers[name] = value
    }
    res.writeHead(status, headers)
    res.write(head.subarray(end + 4))
  })
  child.stdout.on("end", () => res.end())
}

/**
 * One HTTPS server on loopback with its own test CA, answering by Host:
 * `echo.test` (reflects headers and body), `sse.test` (Server-Sent Events), `duplex.test`
 * (echoes each upload chunk as it arrives), `git.test` (git smart HTTP), WebSocket echo on
 * `ws.test`, and every other name records the headers it got (a fake api.anthropic.com).
 */
export const startTestUpstreams = async (options: { gitRoot: string; gitAuth: string }): Promise<TestUpstreams> => {
  const ca = await makeCertificateAuthority()
  const leaves = makeLeafCertificateCache(ca)
  const received: Array<Received> = []
  const git = gitBackend(options.gitRoot, options.gitAuth)
  const server = https.createServer({ SNICallback: leaves.sniCallback }, (req, res) => {
    const host = (req.headers.host ?? "").split(":")[0]!
    received.push({ host, method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } })
    if (host === "git.test") return git(req, res)
    if (host === "echo.test") {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const auth = String(req.headers.authorization ?? "")
        const body = JSON.stringify({
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
          base64: Buffer.from(auth).toString("base64"),
          embedded: Buffer.from(`user=${auth};`).toString("base64"),
          url: encodeURIComponent(auth),
        })
        // /compressed?encoding=E answers in E whatever Accept-Encoding said (a careless upstream).
        const encoding = new URL(req.url ?? "/", "https://echo.test").searchParams.get("encoding")
        if (encoding !== null) {
          const encoders: Record<string, (b: Buffer) => Buffer> = {
            gzip: zlib.gzipSync,
            br: zlib.brotliCompressSync,
            deflate: zlib.deflateSync,
          }
          const encoded = (encoders[encoding] ?? ((b: Buffer) => b))(Buffer.from(body))
          res.writeHead(200, { "content-type": "application/json", "content-encoding": encoding })
          return res.end(encoded)
        }
        res.writeHead(200, {
          "content-type": "application/json",
          "x-echo-authorization": String(req.headers.authorization ?? ""),
        })
        // Split the body so that echoed values straddle chunk boundaries.
        const mid = Math.floor(body.length / 2)
        res.write(body.slice(0, mid))
        setTimeout(() => res.end(body.slice(mid)), 20)
      })
      return
    }
    if (host === "sse.test") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      let n = 0
      const tick = setInterval(() => {
        res.write(`data: token-${n}\n\n`)
        if (++n === 5) {
          clearInterval(tick)
          res.end()
        }
      }, 150)
      return
    }
    if (host === "duplex.test") {
      res.writeHead(200, { "content-type": "application/octet-stream" })
      req.on("data", (c: Buffer) => res.write(c))
      req.on("end", () => res.end())
      return
    }
    req.resume()
    req.on("end", () => json(res, 200, { host, headers: req.headers }))
  })
  const wss = new WebSocketServer({ noServer: true })
  // /deflate accepts permessage-deflate when offered; /fragmented splits its hello into two frames
  // in the middle of the authorization value.
  const deflating = new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } })
  server.on("upgrade", (req, socket, head) => {
    received.push({ host: "ws.test", method: "GET", url: req.url ?? "", headers: { ...req.headers } })
    ;(req.url === "/deflate" ? deflating : wss).handleUpgrade(req, socket, head, (ws) => {
      const hello = `hello; you sent authorization=${req.headers.authorization ?? ""}`
      if (req.url === "/fragmented") {
        const cut = hello.length - 10
        ws.send(hello.slice(0, cut), { fin: false })
        ws.send(hello.slice(cut), { fin: true })
      } else ws.send(hello)
      ws.on("message", (data) => ws.send(`echo:${data.toString()}`))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: (server.address() as AddressInfo).port,
    caPem: ca.certificatePem,
    received,
    close: () =>
      new Promise((resolve) => {
        wss.close()
        deflating.close()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
