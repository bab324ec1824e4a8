import { Transform } from "node:stream"
import type { TransformCallback } from "node:stream"
import { pendingLength, redactInPlace } from "./SecretScanner.ts"
import type { SecretNeedles } from "./SecretScanner.ts"

interface Piece {
  readonly bytes: Buffer
  readonly payload: boolean
}

/**
 * Server-to-guest WebSocket bytes, parsed into frames so that a credential echoed across frame
 * boundaries (a fragmented message, or any split the server chose) is still found: payload bytes
 * of consecutive frames are scanned as one text and redacted in place (lengths stay valid).
 * Compressed (RSV bits: permessage-deflate is never offered on injected upgrades) or masked server
 * frames cannot be scanned and end the connection.
 */
export class WebSocketFrameScanner extends Transform {
  private input: Buffer = Buffer.alloc(0)
  private remaining = 0
  private pending: Array<Piece> = []
  private reported = false
  private readonly secrets: SecretNeedles
  private readonly onFound: () => void

  constructor(secrets: SecretNeedles, onFound: () => void) {
    super()
    this.secrets = secrets
    this.onFound = onFound
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let buf = this.input.length > 0 ? Buffer.concat([this.input, chunk]) : chunk
    this.input = Buffer.alloc(0)
    while (buf.length > 0) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, buf.length)
        this.pending.push({ bytes: Buffer.from(buf.subarray(0, n)), payload: true }) // a copy: edited in place
        this.remaining -= n
        buf = buf.subarray(n)
        continue
      }
      if (buf.length < 2) break
      if ((buf[0]! & 0x70) !== 0) return callback(new Error("compressed or extended WebSocket frame from upstream"))
      if ((buf[1]! & 0x80) !== 0) return callback(new Error("masked WebSocket frame from upstream"))
      const short = buf[1]! & 0x7f
      const headerLength = short === 126 ? 4 : short === 127 ? 10 : 2
      if (buf.length < headerLength) break
      const length = short === 126 ? buf.readUInt16BE(2) : short === 127 ? Number(buf.readBigUInt64BE(2)) : short
      this.pending.push({ bytes: Buffer.from(buf.subarray(0, headerLength)), payload: false })
      this.remaining = length
      buf = buf.subarray(headerLength)
    }
    if (buf.length > 0) this.input = Buffer.from(buf)
    callback(null, this.release(false))
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.release(true))
  }

  /** Scans the held payload, writes redactions back, and returns what can no longer become a needle. */
  private release(all: boolean): Buffer {
    const payloads = this.pending.filter((p) => p.payload).map((p) => p.bytes)
    const window = Buffer.concat(payloads)
    if (redactInPlace(window, this.secrets)) {
      let at = 0
      for (const p of payloads) at += window.copy(p, 0, at, at + p.length)
      if (!this.reported) {
        this.reported = true
        this.onFound()
      }
    }
    const keep = all ? 0 : pendingLength(window, this.secrets)
    let releasable = window.length - keep
    const out: Array<Buffer> = []
    let i = 0
    for (; i < this.pending.length; i++) {
      const p = this.pending[i]!
      if (!p.payload) {
        if (releasable === 0 && keep > 0) break
        out.push(p.bytes)
        continue
      }
      if (p.bytes.length <= releasable) {
        out.push(p.bytes)
        releasable -= p.bytes.length
        continue
      }
      out.push(p.bytes.subarray(0, releasable))
      this.pending[i] = { bytes: p.bytes.subarray(releasable), payload: true }
      releasable = 0
      break
    }
    this.pending = this.pending.slice(i)
    return Buffer.concat(out)
  }
}
