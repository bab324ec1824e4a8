type OutputStream = "stdout" | "stderr"

/**
 * Emits a session's output live, at most one event per stream every `intervalMs`; what arrives
 * in between is merged into the next one. Every event is queued for the session's subscribers,
 * so a guest that writes one byte at a time must not cost the node one event per byte: the
 * number of events is bounded by time, their bytes by the OutputCap in front of this.
 */
export class LiveOutput {
  private readonly pending: Record<OutputStream, Array<string>> = { stdout: [], stderr: [] }
  private readonly last: Record<OutputStream, number> = { stdout: 0, stderr: 0 }
  private readonly timers: Partial<Record<OutputStream, ReturnType<typeof setTimeout>>> = {}
  private readonly emit: (stream: OutputStream, data: string) => void
  private readonly intervalMs: number

  constructor(emit: (stream: OutputStream, data: string) => void, intervalMs = 50) {
    this.emit = emit
    this.intervalMs = intervalMs
  }

  push(stream: OutputStream, data: string): void {
    if (data.length === 0) return
    this.pending[stream].push(data)
    const wait = this.last[stream] + this.intervalMs - Date.now()
    if (wait <= 0) this.flush(stream)
    else this.timers[stream] ??= setTimeout(() => this.flush(stream), wait)
  }

  /** Emits what is pending now; no timer is left behind. */
  end(): void {
    this.flush("stdout")
    this.flush("stderr")
  }

  private flush(stream: OutputStream): void {
    clearTimeout(this.timers[stream])
    delete this.timers[stream]
    const parts = this.pending[stream]
    if (parts.length === 0) return
    this.pending[stream] = []
    this.last[stream] = Date.now()
    this.emit(stream, parts.join(""))
  }
}
