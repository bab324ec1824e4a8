import { assert, describe, it } from "@effect/vitest"
import { retryAfterMs, retryingFetch } from "../src/retry.ts"

/** A fetch that answers from a script of statuses and records when each request came. */
const scripted = (answers: Array<{ status: number; retryAfter?: string }>) => {
  const times: Array<number> = []
  const bodies: Array<string> = []
  const fetch = async (request: Request) => {
    times.push(Date.now())
    bodies.push(await request.text())
    const a = answers[Math.min(times.length - 1, answers.length - 1)]!
    return new Response(`answer ${times.length}`, {
      status: a.status,
      headers: a.retryAfter === undefined ? {} : { "retry-after": a.retryAfter },
    })
  }
  return { fetch, times, bodies }
}

const post = () => new Request("http://paws.test/v1/sessions", { method: "POST", body: '{"a":1}' })

describe("retryingFetch", () => {
  it("reads Retry-After as seconds or as an HTTP date", () => {
    assert.strictEqual(retryAfterMs("3"), 3000)
    assert.strictEqual(retryAfterMs(new Date(10_000).toUTCString(), 8_000), 2000)
    assert.strictEqual(retryAfterMs("soon"), undefined)
    assert.strictEqual(retryAfterMs(null), undefined)
  })

  it("retries 429 after Retry-After and replays the body", async () => {
    const s = scripted([{ status: 429, retryAfter: "1" }, { status: 202 }])
    const response = await retryingFetch(s.fetch)(post())
    assert.strictEqual(response.status, 202)
    assert.strictEqual(s.times.length, 2)
    assert.isAtLeast(s.times[1]! - s.times[0]!, 990)
    assert.deepStrictEqual(s.bodies, ['{"a":1}', '{"a":1}'])
  })

  it("backs off exponentially on 503 without Retry-After and returns the last answer when retries run out", async () => {
    const s = scripted([{ status: 503 }])
    const response = await retryingFetch(s.fetch, { retries: 3, baseDelayMs: 40 })(post())
    assert.strictEqual(response.status, 503)
    assert.strictEqual(await response.text(), "answer 4")
    const gaps = s.times.slice(1).map((t, i) => t - s.times[i]!)
    assert.strictEqual(gaps.length, 3)
    assert.isAtLeast(gaps[2]!, 40 * 4 * 0.5 - 5, "the third wait is about 4× the first")
  })

  it("does not retry other failures", async () => {
    const s = scripted([{ status: 500 }, { status: 200 }])
    assert.strictEqual((await retryingFetch(s.fetch)(post())).status, 500)
    assert.strictEqual(s.times.length, 1)
  })
})
