import { Transform } from "node:stream"
import type { TransformCallback } from "node:stream"

/**
 * Passes a request body through and fails unless it is exactly `length` bytes (when framed by a
 * Content-Length), so the length the proxy declared upstream is the length it wrote. The guest's
 * parser already enforces this; the meter keeps it true whatever sits between them.
 */
export class BodyMeter extends Transform {
  private seen = 0
  private readonly length: number | undefined

  constructor(length: number | undefined) {
    super()
    this.length = length
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length
    if (this.length !== undefined && this.seen > this.length) return callback(new BodyLengthMismatch())
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    callback(this.length !== undefined && this.seen !== this.length ? new BodyLengthMismatch() : null)
  }
}

export class BodyLengthMismatch extends Error {
  constructor() {
    super("the request body did not match its declared length")
    this.name = "BodyLengthMismatch"
  }
}
