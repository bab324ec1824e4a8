/**
 * Keeps at most `capBytes` of one output stream. Chunks are decoded as UTF-8 across chunk
 * boundaries; what passes the cap is dropped and `truncated` is set.
 */
export class OutputCap {
  private kept = 0
  private readonly decoder = new TextDecoder("utf-8", { fatal: false })
  private readonly parts: Array<string> = []
  private readonly capBytes: number
  truncated = false

  constructor(capBytes: number) {
    this.capBytes = capBytes
  }

  /** The text to emit for this chunk ("" once the cap is reached). */
  push(chunk: Uint8Array): string {
    const room = this.capBytes - this.kept
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true
      return ""
    }
    const slice = chunk.length > room ? chunk.subarray(0, room) : chunk
    if (slice.length < chunk.length) this.truncated = true
    this.kept += slice.length
    const text = this.decoder.decode(slice, { stream: true })
    this.parts.push(text)
    return text
  }

  /** Flushes a dangling partial UTF-8 sequence. */
  end(): string {
    const text = this.decoder.decode()
    this.parts.push(text)
    return text
  }

  get text(): string {
    return this.parts.join("")
  }
}
