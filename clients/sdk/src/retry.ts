export interface RetryOptions {
  /** Retries after the first attempt (default 4). */
  readonly retries?: number
  /** First backoff when the server sends no `Retry-After` (default 250 ms), doubled each retry. */
  readonly baseDelayMs?: number
  /** Upper bound of one wait, `Retry-After` included (default 30 s). */
  readonly maxDelayMs?: number
}

/** 429 (rate limited) and 503 (not ready, no node free) are worth asking again; nothing else is. */
const retryable = (status: number) => status === 429 || status === 503

/** `Retry-After` as milliseconds: either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const retryAfterMs = (header: string | null, now: number = Date.now()): number | undefined => {
  if (header === null || header.trim() === "") return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

const sleep = (ms: number, signal: AbortSignal | null) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener("abort", () => {
      clearTimeout(timer)
      reject(signal.reason)
    }, { once: true })
  })

/**
 * Wraps `fetch` so 429 and 503 answers are retried: after `Retry-After` when the server says, else after an
 * exponential backoff with jitter. Requests are replayed from a clone, so bodies survive; a POST stays safe to
 * replay because session creates carry an idempotency key.
 */
export const retryingFetch = (
  inner: (request: Request) => Promise<Response>,
  options: RetryOptions = {},
): (request: Request) => Promise<Response> => {
  const retries = options.retries ?? 4
  const base = options.baseDelayMs ?? 250
  const max = options.maxDelayMs ?? 30_000
  return async (request) => {
    for (let attempt = 0;; attempt++) {
      const response = await inner(attempt < retries ? request.clone() : request)
      if (!retryable(response.status) || attempt >= retries) return response
      const wait = retryAfterMs(response.headers.get("retry-after")) ?? base * 2 ** attempt * (0.5 + Math.random() / 2)
      await response.body?.cancel()
      await sleep(Math.min(wait, max), request.signal)
    }
  }
}
