// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { randomBytes } from "node:crypto"
import { signWebhook } from "../src/daemons/WebhookSignature.ts"
import { registerFakeNode } from "./FakeNode.ts"
import {
  backends,
  call,
  type ControlHandle,
  postgresBackend,
  type Reply,
  startControl,
  TestControl,
  TestDatabase,
  waitForSession,
} from "./harness.ts"

const define = (control: ControlHandle, body: Record<string, unknown>, key?: string) =>
  call(control, "POST", "/v1/daemons", {
    body: { workload: { type: "script", script: "echo hi" }, ...body },
    ...(key === undefined ? {} : { key }),
  })

const run = (control: ControlHandle, name: string, key?: string) =>
  call(control, "POST", `/v1/daemons/${name}/run`, key === undefined ? {} : { key })

const assertLimited = (r: Reply, limit: string, maxRetry: number) => {
  assert.strictEqual(r.status, 429, r.text)
  assert.strictEqual(r.body._tag, "RateLimited")
  assert.strictEqual(r.body.limit, limit)
  const retry = Number(r.headers.get("retry-after"))
  assert.isTrue(
    Number.isInteger(retry) && retry >= 1 && retry <= maxRetry,
    `Retry-After: ${r.headers.get("retry-after")}`,
  )
  assert.strictEqual(retry, r.body.retryAfterSeconds)
}

const signedDelivery = (control: ControlHandle, path: string, secret: string, body: string) => {
  const timestamp = String(Math.floor(Date.now() / 1000))
  return call(control, "POST", path, {
    raw: body,
    key: null,
    headers: {
      "content-type": "application/json",
      "x-paws-timestamp": timestamp,
      "x-paws-signature-256": signWebhook(secret, timestamp, body),
    },
  })
}

for (const backend of backends) {
  describe(`per-daemon limits and daemon projects over HTTP (${backend.name})`, () => {
    layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("hourly limit: 3rd manual run is a 429; a webhook over it is a visible, audited rate_limited invocation", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-hourly", maxConcurrent: 4 })
            const created = yield* define(control, {
              name: "hourly",
              triggers: [{ kind: "webhook", name: "ping" }],
              limits: { maxInvocationsPerHour: 2, maxInvocationsPerDay: null },
            })
            assert.strictEqual(created.status, 201, created.text)
            // A null limit is "none": only the limits that apply are shown.
            assert.deepStrictEqual(created.body.daemon.limits, { maxInvocationsPerHour: 2 })
            assert.strictEqual(created.body.daemon.project, "default")
            const shown = yield* call(control, "GET", "/v1/daemons/hourly")
            assert.deepStrictEqual(shown.body.limits, { maxInvocationsPerHour: 2 })

            for (let i = 0; i < 2; i++) {
              const ok = yield* run(control, "hourly")
              assert.strictEqual(ok.status, 202, ok.text)
              assert.strictEqual(ok.body.status, "pending")
            }
            const third = yield* run(control, "hourly")
            assertLimited(third, "daemon.maxInvocationsPerHour", 3600)
            // The 429 made no session.
            const afterManual = yield* call(control, "GET", "/v1/sessions?daemon=hourly")
            assert.strictEqual(afterManual.body.sessions.length, 2, afterManual.text)

            // A webhook over the limit: accepted (the sender did nothing wrong) but recorded as rate limited.
            const hook = yield* signedDelivery(
              control,
              "/v1/hooks/hourly/ping",
              created.body.secrets.ping,
              JSON.stringify({ n: 1 }),
            )
            assert.strictEqual(hook.status, 202, hook.text)
            assert.strictEqual(hook.body.status, "cancelled")
            const limited = yield* waitForSession(control, hook.body.sessionId, (s) => s.status === "cancelled")
            assert.strictEqual(limited.reason, "rate_limited: daemon.maxInvocationsPerHour")
            assert.strictEqual(limited.daemon, "hourly")
            assert.deepStrictEqual(limited.trigger, { kind: "webhook", name: "ping" })
            assert.isNull(limited.startedAt)
            const listed = yield* call(control, "GET", "/v1/sessions?daemon=hourly")
            assert.strictEqual(listed.body.sessions.length, 3, listed.text)
            assert.include(listed.body.sessions.map((s: any) => s.id), hook.body.sessionId)
            const events = yield* call(control, "GET", `/v1/sessions/${hook.body.sessionId}/events`)
            assert.include(events.text, "rate_limited: daemon.maxInvocationsPerHour")

            // Audited: both refusals, naming the limit; the webhook's row names its session.
            const audit = yield* call(control, "GET", "/v1/audit?daemon=hourly&action=daemon.trigger")
            assert.strictEqual(audit.status, 200, audit.text)
            const results = audit.body.entries.map((e: any) => e.result)
            assert.deepStrictEqual(results, ["invoked", "invoked", "rate_limited", "rate_limited"])
            const [manualRow, hookRow] = audit.body.entries.slice(2)
            assert.deepStrictEqual(manualRow.detail, { kind: "manual", limit: "daemon.maxInvocationsPerHour" })
            assert.deepStrictEqual(hookRow.detail, { kind: "webhook", limit: "daemon.maxInvocationsPerHour" })
            assert.strictEqual(hookRow.session, hook.body.sessionId)
            assert.strictEqual(hookRow.target, "hourly/ping")

            // Rate-limited invocations do not count: raising the limit to 3 admits exactly one more.
            const patched = yield* call(control, "PATCH", "/v1/daemons/hourly", {
              body: { limits: { maxInvocationsPerHour: 3 } },
            })
            assert.strictEqual(patched.status, 200, patched.text)
            assert.deepStrictEqual(patched.body.daemon.limits, { maxInvocationsPerHour: 3 })
            assert.strictEqual((yield* run(control, "hourly")).status, 202)
            assertLimited(yield* run(control, "hourly"), "daemon.maxInvocationsPerHour", 3600)
            // A patch of another field keeps the limits; `{}` lifts them.
            const other = yield* call(control, "PATCH", "/v1/daemons/hourly", { body: { timeoutMs: 60_000 } })
            assert.deepStrictEqual(other.body.daemon.limits, { maxInvocationsPerHour: 3 })
            const lifted = yield* call(control, "PATCH", "/v1/daemons/hourly", { body: { limits: {} } })
            assert.deepStrictEqual(lifted.body.daemon.limits, {})
            assert.strictEqual((yield* run(control, "hourly")).status, 202)
          }))

        it.effect("concurrency limit: a second unfinished session is refused until the first ends; replace is refused first", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-busy", maxConcurrent: 4 })
            const created = yield* define(control, {
              name: "busy",
              workload: { type: "script", script: "hang" },
              limits: { maxConcurrentSessions: 1 },
            })
            assert.strictEqual(created.status, 201, created.text)
            const first = yield* run(control, "busy")
            assert.strictEqual(first.status, 202, first.text)
            yield* waitForSession(control, first.body.sessionId, (s) => s.status === "running")
            assertLimited(yield* run(control, "busy"), "daemon.maxConcurrentSessions", 60)
            const cancelled = yield* call(control, "DELETE", `/v1/sessions/${first.body.sessionId}`)
            assert.strictEqual(cancelled.status, 200, cancelled.text)
            yield* waitForSession(control, first.body.sessionId, (s) => s.status === "cancelled")
            const next = yield* run(control, "busy")
            assert.strictEqual(next.status, 202, next.text)
            yield* call(control, "DELETE", `/v1/sessions/${next.body.sessionId}`)

            // `replace` over an invocation limit: refused before the running session is cancelled.
            yield* define(control, {
              name: "replacer",
              workload: { type: "script", script: "hang" },
              concurrency: "replace",
              limits: { maxInvocationsPerHour: 1 },
            })
            const running = yield* run(control, "replacer")
            yield* waitForSession(control, running.body.sessionId, (s) => s.status === "running")
            assertLimited(yield* run(control, "replacer"), "daemon.maxInvocationsPerHour", 3600)
            const kept = yield* call(control, "GET", `/v1/sessions/${running.body.sessionId}`)
            assert.strictEqual(kept.body.status, "running", kept.text)
            yield* call(control, "DELETE", `/v1/sessions/${running.body.sessionId}`)
          }))

        it.effect("daemons belong to the creating key's project: others' are 404; invocations run there", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            yield* registerFakeNode(control.registry, { id: "n-projects", maxConcurrent: 4 })
            const keyIn = (project: string, limits: object = {}) =>
              Effect.gen(function* () {
                const p = yield* call(control, "POST", "/v1/projects", { body: { id: project, limits } })
                assert.strictEqual(p.status, 201, p.text)
                const k = yield* call(control, "POST", "/v1/keys", {
                  body: { name: project, scopes: ["sessions:write"], project },
                })
                assert.strictEqual(k.status, 201, k.text)
                return k.body.secret as string
              })
            const red = yield* keyIn("red")
            // Blue may have no unfinished session: its daemon's invocation is refused by the project quota.
            const blue = yield* keyIn("blue", { maxConcurrentSessions: 0 })

            const made = yield* define(control, { name: "red-d" }, red)
            assert.strictEqual(made.status, 201, made.text)
            assert.strictEqual(made.body.daemon.project, "red")
            for (
              const [method, path, body] of [
                ["GET", "/v1/daemons/red-d", undefined],
                ["PATCH", "/v1/daemons/red-d", { enabled: false }],
                ["POST", "/v1/daemons/red-d/run", undefined],
                ["GET", "/v1/daemons/red-d/history", undefined],
                ["DELETE", "/v1/daemons/red-d", undefined],
              ] as const
            ) {
              const r = yield* call(control, method, path, { key: blue, ...(body === undefined ? {} : { body }) })
              assert.strictEqual(r.status, 404, `${method} ${path}: ${r.text}`)
            }
            const blueList = yield* call(control, "GET", "/v1/daemons", { key: blue })
            assert.deepStrictEqual(blueList.body, [])
            const redList = yield* call(control, "GET", "/v1/daemons", { key: red })
            assert.deepStrictEqual(redList.body.map((d: any) => d.name), ["red-d"])
            // Still there, unchanged, after blue's attempts.
            const still = yield* call(control, "GET", "/v1/daemons/red-d", { key: red })
            assert.strictEqual(still.body.enabled, true)

            // Red's invocation is a red session: red sees it, blue does not.
            const ran = yield* run(control, "red-d", red)
            assert.strictEqual(ran.status, 202, ran.text)
            const session = yield* call(control, "GET", `/v1/sessions/${ran.body.sessionId}`, { key: red })
            assert.strictEqual(session.body.project, "red")
            const hidden = yield* call(control, "GET", `/v1/sessions/${ran.body.sessionId}`, { key: blue })
            assert.strictEqual(hidden.status, 404)

            // Blue's own daemon runs in blue, under blue's quota.
            assert.strictEqual((yield* define(control, { name: "blue-d" }, blue)).status, 201)
            assertLimited(yield* run(control, "blue-d", blue), "project.maxConcurrentSessions", 60)
          }))

        it.effect("negative or absurd daemon limits are a 400 naming the field", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            const cases: Array<[Record<string, unknown>, string]> = [
              [{ maxInvocationsPerHour: -1 }, "limits.maxInvocationsPerHour"],
              [{ maxInvocationsPerDay: 1e12 }, "limits.maxInvocationsPerDay"],
              [{ maxConcurrentSessions: "ten" }, "limits.maxConcurrentSessions"],
              [{ maxSessionMinutesPerDay: 1.5 }, "limits.maxSessionMinutesPerDay"],
            ]
            for (const [limits, path] of cases) {
              const r = yield* define(control, { name: "bad-limits", limits })
              assert.strictEqual(r.status, 400, `${JSON.stringify(limits)}: ${r.text}`)
              assert.isDefined(r.body.issues.find((i: any) => i.path === path), `no issue for ${path}: ${r.text}`)
            }
            assert.strictEqual((yield* define(control, { name: "good-limits" })).status, 201)
            const patch = yield* call(control, "PATCH", "/v1/daemons/good-limits", {
              body: { limits: { maxSessionMinutesPerDay: -5 } },
            })
            assert.strictEqual(patch.status, 400, patch.text)
            assert.include(patch.text, "limits.maxSessionMinutesPerDay")
            const unchanged = yield* call(control, "GET", "/v1/daemons/good-limits")
            assert.notProperty(unchanged.body, "limits")
          }))
      },
    )
  })
}

describe("daemon limits with two control replicas on one PostgreSQL", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("racing manual runs on both replicas admit exactly the limit; cron ticks over it are rate_limited; session-minutes per day", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        const env = { PAWS_VAULT_KEY: randomBytes(32).toString("base64"), PAWS_CRON_POLL_MS: "100" }
        const a = yield* startControl(store, env)
        const b = yield* startControl(store, env)
        const made = yield* define(a, { name: "raced", limits: { maxInvocationsPerHour: 3 } })
        assert.strictEqual(made.status, 201, made.text)
        const replies = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => run(i % 2 === 0 ? a : b, "raced")),
          { concurrency: "unbounded" },
        )
        // Per-process counters (or counting outside the lock) would admit more than 3.
        assert.strictEqual(replies.filter((r) => r.status === 202).length, 3, replies.map((r) => r.text).join("\n"))
        for (const r of replies.filter((r) => r.status !== 202)) assertLimited(r, "daemon.maxInvocationsPerHour", 3600)

        // A cron trigger every second, one invocation per hour: the first tick runs, the next are recorded.
        const ticker = yield* define(b, {
          name: "ticker",
          triggers: [{ kind: "cron", name: "every-second", schedule: "* * * * * *" }],
          limits: { maxInvocationsPerHour: 1 },
        })
        assert.strictEqual(ticker.status, 201, ticker.text)
        let sessions: Array<any> = []
        while (sessions.length < 3) {
          yield* Effect.sleep(200)
          sessions = (yield* call(a, "GET", "/v1/sessions?daemon=ticker")).body.sessions
        }
        yield* call(a, "PATCH", "/v1/daemons/ticker", { body: { enabled: false } })
        const limited = sessions.filter((s) => s.reason === "rate_limited: daemon.maxInvocationsPerHour")
        assert.strictEqual(limited.length, sessions.length - 1, JSON.stringify(sessions))
        for (const s of limited) {
          assert.strictEqual(s.status, "cancelled")
          assert.deepStrictEqual(s.trigger, { kind: "cron", name: "every-second" })
        }
        const audit = yield* call(b, "GET", "/v1/audit?daemon=ticker&action=daemon.trigger")
        const rows = audit.body.entries.filter((e: any) => e.result === "rate_limited")
        assert.isAtLeast(rows.length, limited.length, audit.text)
        assert.deepStrictEqual(rows[0].detail, { kind: "cron", limit: "daemon.maxInvocationsPerHour" })

        // Session-minutes per UTC day, from the sessions table: a session that ran 2 minutes today uses them up.
        const minutes = yield* define(a, { name: "metered", limits: { maxSessionMinutesPerDay: 2 } })
        assert.strictEqual(minutes.status, 201, minutes.text)
        const first = yield* run(b, "metered")
        assert.strictEqual(first.status, 202, first.text)
        yield* Effect.scoped(Effect.gen(function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
          yield* sql`UPDATE sessions SET status = 'completed', started_at = date_trunc('day', now()),
            completed_at = date_trunc('day', now()) + interval '2 minutes' WHERE id = ${first.body.sessionId}`
        })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
        assertLimited(yield* run(a, "metered"), "daemon.maxSessionMinutesPerDay", 86_400)
      }))
  })
})
