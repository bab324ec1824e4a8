import { assert, describe, it } from "@effect/vitest"
import type { ProxyAuditEvent } from "../../core/src/ProxyAudit.ts"
import { makeAuditLog } from "../src/AuditLog.ts"
import { secretNeedles } from "../src/SecretScanner.ts"

const secret = "sk-throttle-9c1e7d-secret"

const collect = (limits: { burst: number; perSecond: number; windowMs: number }) => {
  const events: Array<ProxyAuditEvent> = []
  const lines: Array<string> = []
  const log = makeAuditLog(
    (line) => {
      lines.push(line)
      events.push(JSON.parse(line).event)
    },
    secretNeedles([secret]),
    limits,
  )
  return { log, events, lines }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("AuditLog throttle", () => {
  it("emits the first of identical events at once and their repeats as one event per window, with totals", async () => {
    const { log, events } = collect({ burst: 10, perSecond: 1, windowMs: 100 })
    for (let i = 0; i < 5; i++) {
      log.record({ decision: "allowed", host: "a.test", method: "GET", path: "/x", status: 200, bytesOut: 10 })
    }
    log.record({ decision: "allowed", host: "a.test", method: "GET", path: "/x", status: 500, bytesOut: 1 })
    assert.deepStrictEqual(events.map((e) => [e.status, e.count]), [[200, undefined], [500, undefined]])
    await sleep(250) // the window flushes on its own
    assert.strictEqual(events.length, 3)
    assert.deepStrictEqual({ count: events[2]!.count, bytesOut: events[2]!.bytesOut, status: events[2]!.status }, {
      count: 4,
      bytesOut: 40,
      status: 200,
    })
    // A new window: the next one goes out at once again.
    log.record({ decision: "allowed", host: "a.test", method: "GET", path: "/x", status: 200, bytesOut: 10 })
    assert.strictEqual(events.length, 4)
    assert.isUndefined(events[3]!.count)
    log.close()
    assert.strictEqual(events.length, 4, "nothing held back, nothing to flush")
  })

  it("limits distinct events per bucket, counts the rest by decision, and a DNS flood leaves requests their budget", () => {
    const { log, events, lines } = collect({ burst: 3, perSecond: 0.001, windowMs: 60_000 })
    for (let i = 0; i < 50; i++) log.record({ decision: "dns_refused", host: `n${i}.test`, reason: "DNS A" })
    log.record({ decision: "credential_leak", host: "x.test", reason: `carried ${secret}` })
    assert.deepStrictEqual(events.map((e) => e.host), ["n0.test", "n1.test", "n2.test", "x.test"])
    log.close()
    const summary = events.at(-1)!
    assert.strictEqual(summary.decision, "audit_suppressed")
    assert.strictEqual(summary.count, 47)
    assert.include(summary.reason, "dns_refused 47")
    for (const line of lines) assert.notInclude(line, secret) // every line is redacted, summaries too
  })
})
