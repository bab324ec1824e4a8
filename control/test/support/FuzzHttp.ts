import * as net from "node:net"

/** What came back from one raw HTTP/1.1 exchange. */
export interface RawReply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
  /** Parsed JSON body, or undefined when the body is not JSON. */
  readonly json: unknown
}

export interface RawRequest {
  readonly method: string
  readonly path: string
  readonly headers?: ReadonlyArray<readonly [string, string]>
  readonly body?: Uint8Array | string
}

const decodeChunked = (raw: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  let at = 0
  while (at < raw.length) {
    const eol = raw.indexOf("\r\n", at)
    if (eol === -1) break
    const size = Number.parseInt(raw.subarray(at, eol).toString(), 16)
    if (!Number.isFinite(size) || size === 0) break
    parts.push(raw.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
  return Buffer.concat(parts)
}

/** Parses the first response in `data` (status line, headers, content-length or chunked body). */
export const parseReply = (data: Buffer): RawReply | undefined => {
  const end = data.indexOf("\r\n\r\n")
  if (end === -1) return undefined
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n")
  const status = Number.parseInt(statusLine!.split(" ")[1] ?? "", 10)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(":")
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  let raw = data.subarray(end + 4)
  if (headers["transfer-encoding"] === "chunked") raw = decodeChunked(raw)
  else if (headers["content-length"] !== undefined) raw = raw.subarray(0, Number(headers["content-length"]))
  const body = raw.toString("utf8")
  let json: unknown = undefined
  try {
    json = body === "" ? undefined : JSON.parse(body)
  } catch {
    json = undefined
  }
  return { status, headers, body, json }
}

/**
 * One request over a fresh TCP connection with `Connection: close`, bytes exactly as given:
 * fetch and node:http refuse to send many of the odd headers and methods the fuzzer makes.
 */
export const rawRequest = (url: string, request: RawRequest, timeoutMs = 10_000): Promise<RawReply> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const body = typeof request.body === "string" ? Buffer.from(request.body) : Buffer.from(request.body ?? [])
    const head = [`${request.method} ${request.path} HTTP/1.1`, `host: ${hostname}:${port}`, "connection: close"]
    for (const [name, value] of request.headers ?? []) head.push(`${name}: ${value}`)
    if (request.body !== undefined) head.push(`content-length: ${body.length}`)
    const socket = net.connect(Number(port), hostname)
    const chunks: Array<Buffer> = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete reply within ${timeoutMs} ms to ${request.method} ${request.path}`))
    }, timeoutMs)
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", () => {}) // a reset after the reply is fine; no reply at all is caught below
    socket.on("close", () => {
      clearTimeout(timer)
      const reply = parseReply(Buffer.concat(chunks))
      if (reply === undefined) {
        reject(new Error(`connection closed without a reply to ${request.method} ${request.path}`))
      } else resolve(reply)
    })
    socket.write(Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), body]))
  })

/**
 * Writes `bytes` (any garbage, possibly several pipelined requests) and half-closes; returns the
 * status codes of every response the server sent before closing (or before `timeoutMs`).
 */
export const rawExchange = (url: string, bytes: Uint8Array, timeoutMs = 5_000): Promise<Array<number>> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = net.connect(Number(port), hostname)
    const chunks: Array<Buffer> = []
    const finish = () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString("latin1")
      resolve(Array.from(text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g), (m) => Number(m[1])))
    }
    const timer = setTimeout(() => {
      socket.destroy()
      finish()
    }, timeoutMs)
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", () => {})
    socket.on("close", finish)
    socket.end(bytes)
  })
