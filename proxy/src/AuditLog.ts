import type { AuditDecision, ProxyAuditEvent } from "@paws/core/ProxyAudit"
import type { ProxyMessage } from "@paws/core/ProxyConfig"
import { redactText } from "./SecretScanner.ts"
import type { SecretNeedles } from "./SecretScanner.ts"

/**
 * Writes NDJSON `ProxyMessage`s to the parent (stdout). Every line passes a last redaction over
 * the known credential values, so a value can never reach the parent's logs through a reason,
 * a path or a host, whatever the code that built the event did.
 *
 * Audit events are throttled here, at their source, because the guest decides how many there
 * are (a DNS or request flood): see `AuditThrottle`.
 */
export interface AuditLog {
  readonly send: (message: ProxyMessage) => void
  readonly record: (event: Omit<ProxyAuditEvent, "time">) => void
  /** Emits what the throttle holds (aggregates, the suppressed summary) and stops its timer. */
  readonly close: () => void
}

/**
 * Per proxy, i.e. per session. A guest can emit at most `burst` distinct events at once and
 * `perSecond` after that (DNS and requests each have their own bucket, so a DNS flood cannot
 * hide a request); identical events within `windowMs` become one event with a `count`.
 */
export interface AuditThrottleLimits {
  readonly burst: number
  readonly perSecond: number
  readonly windowMs: number
}

export const defaultAuditThrottle: AuditThrottleLimits = { burst: 500, perSecond: 50, windowMs: 5_000 }

type Event = Omit<ProxyAuditEvent, "time">

/** Repeats of one emitted event within the current window. */
interface Repeats {
  first: ProxyAuditEvent | undefined
  count: number
  bytesIn: number | undefined
  bytesOut: number | undefined
  durationMs: number | undefined
}

/** What makes two events "identical": everything but when, how long and how many bytes. */
const keyOf = (e: Event): string =>
  JSON.stringify([e.decision, e.host, e.method, e.path, e.status, e.reason, e.injected])

const bucketOf = (decision: AuditDecision): "dns" | "requests" =>
  decision === "dns_answered" || decision === "dns_refused" ? "dns" : "requests"

const add = (a: number | undefined, b: number | undefined) => (b === undefined ? a : (a ?? 0) + b)

const aggregate = (r: Repeats): ProxyAuditEvent => {
  const { bytesIn: _i, bytesOut: _o, durationMs: _d, ...rest } = r.first!
  return {
    ...rest,
    ...(r.bytesIn === undefined ? {} : { bytesIn: r.bytesIn }),
    ...(r.bytesOut === undefined ? {} : { bytesOut: r.bytesOut }),
    ...(r.durationMs === undefined ? {} : { durationMs: Math.round(r.durationMs * 100) / 100 }),
    count: r.count,
  }
}

export const makeAuditLog = (
  write: (line: string) => void,
  secrets: SecretNeedles,
  limits: AuditThrottleLimits = defaultAuditThrottle,
): AuditLog => {
  const send = (message: ProxyMessage) => write(redactText(JSON.stringify(message), secrets) + "\n")
  const emit = (event: ProxyAuditEvent) => send({ _tag: "audit", event })

  // Keys enter the window only when an event was emitted (took a token), so it stays bounded.
  const window = new Map<string, Repeats>()
  const buckets = { dns: { tokens: limits.burst, at: Date.now() }, requests: { tokens: limits.burst, at: Date.now() } }
  const suppressed = new Map<AuditDecision, number>()
  let suppressedSince: string | undefined
  let timer: ReturnType<typeof setTimeout> | undefined

  const take = (name: "dns" | "requests"): boolean => {
    const b = buckets[name]
    const now = Date.now()
    b.tokens = Math.min(limits.burst, b.tokens + ((now - b.at) / 1000) * limits.perSecond)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  const flush = () => {
    timer = undefined
    for (const r of window.values()) if (r.count > 0) emit(aggregate(r))
    window.clear()
    if (suppressed.size > 0) {
      const total = [...suppressed.values()].reduce((a, b) => a + b, 0)
      const by = [...suppressed].map(([d, n]) => `${d} ${n}`).join(", ")
      emit({
        time: suppressedSince!,
        decision: "audit_suppressed",
        host: "*",
        count: total,
        reason: `${total} audit events over the rate limit (${limits.burst} at once, ${limits.perSecond}/s) ` +
          `were not recorded one by one: ${by}`,
      })
      suppressed.clear()
      suppressedSince = undefined
    }
  }

  const schedule = () => {
    if (timer !== undefined) return
    timer = setTimeout(flush, limits.windowMs)
    timer.unref?.()
  }

  const record = (event: Event) => {
    const time = new Date().toISOString()
    const key = keyOf(event)
    const seen = window.get(key)
    if (seen !== undefined) {
      seen.first ??= { time, ...event }
      seen.count += 1
      seen.bytesIn = add(seen.bytesIn, event.bytesIn)
      seen.bytesOut = add(seen.bytesOut, event.bytesOut)
      seen.durationMs = add(seen.durationMs, event.durationMs)
      return
    }
    if (!take(bucketOf(event.decision))) {
      suppressed.set(event.decision, (suppressed.get(event.decision) ?? 0) + 1)
      suppressedSince ??= time
      return schedule()
    }
    window.set(key, { first: undefined, count: 0, bytesIn: undefined, bytesOut: undefined, durationMs: undefined })
    emit({ time, ...event })
    schedule()
  }

  return {
    send,
    record,
    close: () => {
      if (timer !== undefined) clearTimeout(timer)
      flush()
    },
  }
}

/** The path with query values removed: `/v1/x?key=secret&b=1` → `/v1/x?key&b`. */
export const auditPath = (url: string): string => {
  const q = url.indexOf("?")
  if (q === -1) return url.slice(0, 2048)
  const keys = url.slice(q + 1).split("&").map((kv) => kv.split("=")[0]!).filter((k) => k.length > 0)
  return (url.slice(0, q) + (keys.length > 0 ? "?" + keys.join("&") : "")).slice(0, 2048)
}
