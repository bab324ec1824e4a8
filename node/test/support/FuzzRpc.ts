import WebSocket from "ws"

/**
 * A raw WebSocket to the node's `/rpc` speaking NDJSON by hand, so that the fuzzer can send
 * frames no RpcClient would: garbage, half lines, envelopes of the wrong shape.
 */
export interface RawRpc {
  readonly send: (frame: string | Uint8Array) => void
  /** Resolves with the first decoded line that satisfies `f`, or "closed" when the server closes first. */
  readonly waitFor: (f: (message: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<
    Record<string, unknown> | "closed"
  >
  readonly closed: () => boolean
  readonly close: () => void
}

export const openRawRpc = (url: string, token: string): Promise<RawRpc> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
    const received: Array<Record<string, unknown>> = []
    const waiters = new Set<() => void>()
    let isClosed = false
    let partial = ""
    ws.on("message", (data: Buffer) => {
      partial += data.toString()
      const lines = partial.split("\n")
      partial = lines.pop()!
      for (const line of lines) if (line !== "") received.push(JSON.parse(line))
      for (const w of waiters) w()
    })
    ws.on("close", () => {
      isClosed = true
      for (const w of waiters) w()
    })
    ws.on("error", (e) => (isClosed ? undefined : reject(e)))
    ws.on("open", () =>
      resolve({
        send: (frame) => ws.send(frame),
        waitFor: (f, timeoutMs = 5_000) =>
          new Promise((ok, fail) => {
            const check = () => {
              const hit = received.find(f)
              if (hit !== undefined || isClosed) {
                waiters.delete(check)
                clearTimeout(timer)
                ok(hit ?? "closed")
              }
            }
            const timer = setTimeout(() => {
              waiters.delete(check)
              fail(new Error(`no reply within ${timeoutMs} ms; got ${JSON.stringify(received.slice(-3))}`))
            }, timeoutMs)
            waiters.add(check)
            check()
          }),
        closed: () => isClosed,
        close: () => ws.terminate(),
      }))
  })

/** One request envelope as NDJSON (`ids` must be unique per connection). */
export const requestLine = (id: string, tag: string, payload: unknown): string =>
  JSON.stringify({ _tag: "Request", id, tag, payload, headers: [] }) + "\n"
