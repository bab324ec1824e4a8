/**
 * Backpressure between a push source the guest controls (an SSH channel, the agent's socket) and
 * the stream that hands its chunks on: counts what was queued but not yet taken, and pauses the
 * source past `limit` until the consumer has taken half of it. The guest is not trusted, so the
 * node never buffers more than this (plus the one chunk that crossed the line), however fast it
 * writes. Each chunk also counts a fixed overhead, so a flood of tiny chunks is bounded too.
 */
export class InFlight {
  /** What one queued event costs beyond its bytes (object, view, queue slot). */
  static readonly perChunkOverhead = 128
  private queued = 0
  private held = false
  private readonly limit: number
  private readonly pause: () => void
  private readonly resume: () => void

  constructor(limit: number, pause: () => void, resume: () => void) {
    this.limit = limit
    this.pause = pause
    this.resume = resume
  }

  /** A chunk of `bytes` was queued. */
  added(bytes: number): void {
    this.queued += bytes + InFlight.perChunkOverhead
    if (!this.held && this.queued >= this.limit) {
      this.held = true
      this.pause()
    }
  }

  /** The consumer took a chunk of `bytes`. */
  taken(bytes: number): void {
    this.queued -= bytes + InFlight.perChunkOverhead
    if (this.held && this.queued <= this.limit / 2) {
      this.held = false
      this.resume()
    }
  }
}

/** The default bound of one exec's undelivered output. */
export const execInFlightBytes = 1024 * 1024
