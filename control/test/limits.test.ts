// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { call, type ControlHandle, postgresBackend, script, TestDatabase } from "./harness.ts"

const mainTs = new URL("../src/main.ts", import.meta.url).pathname

/** A control plane in its own process (a replica), on the given database; stopped with the scope. */
const replica = (store: { dataDir: string; databaseUrl: string | undefined }) =>
  Effect.gen(function* () {
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [mainTs], {
          env: {
            PATH: process.env["PATH"],
            PAWS_HOST: "127.0.0.1",
            PAWS_PORT: "0",
            PAWS_DATA_DIR: store.dataDir,
            DATABASE_URL: store.databaseUrl,
            PAWS_DB_MAX_CONNECTIONS: "4",
            PAWS_LOG_LEVEL: "Info",
          },
          stdio: ["ignore", "pipe", "pipe"],
        })
      ),
      (c) =>
        Effect.promise(() =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve()
            c.once("exit", () => resolve())
            c.kill("SIGTERM")
          })
        ),
    )
    const url = yield* Effect.promise(() =>
      new Promise<string>((resolve, reject) => {
        let out = ""
        let err = ""
        child.stdout!.on("data", (d) => {
          out += String(d)
          const m = /"api":"(http:\/\/[^"]+)\/v1"/.exec(out)
          if (m !== null) resolve(m[1]!)
        })
        child.stderr!.on("data", (d) => (err += String(d)))
        child.once("exit", (code) => reject(new Error(`control exited with ${code}: ${out}\n${err}`)))
      })
    )
    const adminKey = readFileSync(join(store.dataDir, "admin.key"), "utf8").trim()
    return { url, adminKey, dataDir: store.dataDir, registry: undefined as never, pid: child.pid } satisfies
      & ControlHandle
      & { pid: number | undefined }
  })

const created = (r: { status: number; text: string }) => assert.strictEqual(r.status, 202, r.text)

const assertLimited = (r: { status: number; headers: Headers; body: any; text: string }, limit: string) => {
  assert.strictEqual(r.status, 429, r.text)
  assert.strictEqual(r.body._tag, "RateLimited")
  assert.strictEqual(r.body.limit, limit)
  const retry = Number(r.headers.get("retry-after"))
  assert.isTrue(Number.isInteger(retry) && retry >= 1, `Retry-After: ${r.headers.get("retry-after")}`)
  assert.strictEqual(retry, r.body.retryAfterSeconds)
}

describe("rate limits and quotas across two control processes on one PostgreSQL", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 180_000 })((it) => {
    it.effect("request rate, concurrent sessions and session-minutes hold across replicas and a restart", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        const a = yield* replica(store)
        const b = yield* replica(store)
        const replicas = [a, b]
        const project = (id: string, limits: object) =>
          call(a, "POST", "/v1/projects", { body: { id, limits } }).pipe(
            Effect.map((r) => assert.strictEqual(r.status, 201, r.text)),
          )
        const key = (projectId: string, limits: object = {}) =>
          Effect.map(
            call(a, "POST", "/v1/keys", {
              body: { name: "limited", scopes: ["sessions:write"], project: projectId, limits },
            }),
            (r) => {
              assert.strictEqual(r.status, 201, r.text)
              return { secret: r.body.secret as string, id: r.body.key.id as string }
            },
          )

        // Requests per second: one bucket for the key, whichever replica serves it.
        yield* project("rates", {})
        const fast = yield* key("rates", { requestsPerSecond: 1, requestsBurst: 3 })
        const started = Date.now()
        const replies = []
        for (let i = 0; i < 8; i++) {
          replies.push(yield* call(replicas[i % 2]!, "GET", "/v1/sessions", { key: fast.secret }))
        }
        const elapsedS = (Date.now() - started) / 1000
        const allowed = replies.filter((r) => r.status === 200).length
        // Burst 3 plus at most one token per elapsed second; per-process buckets would have allowed 6.
        assert.isAtMost(allowed, 3 + Math.ceil(elapsedS), `allowed ${allowed} in ${elapsedS} s`)
        assert.isAtLeast(allowed, 3)
        assertLimited(replies.find((r) => r.status === 429)!, "key.requestsPerSecond")

        // Concurrent sessions per key: racing creates on both replicas admit exactly the limit.
        yield* project("keycap", {})
        const capped = yield* key("keycap", { maxConcurrentSessions: 2 })
        const race = yield* Effect.forEach(
          Array.from({ length: 6 }, (_, i) => i),
          (i) => call(replicas[i % 2]!, "POST", "/v1/sessions", { key: capped.secret, body: script(`echo ${i}`) }),
          { concurrency: "unbounded" },
        )
        assert.strictEqual(race.filter((r) => r.status === 202).length, 2, race.map((r) => r.status).join(","))
        assertLimited(race.find((r) => r.status === 429)!, "key.maxConcurrentSessions")

        // Per project: the limit counts every key of the project.
        yield* project("projcap", { maxConcurrentSessions: 2 })
        const k1 = yield* key("projcap")
        const k2 = yield* key("projcap")
        const first = yield* call(a, "POST", "/v1/sessions", { key: k1.secret, body: script("echo 1") })
        created(first)
        created(yield* call(b, "POST", "/v1/sessions", { key: k2.secret, body: script("echo 2") }))
        assertLimited(
          yield* call(b, "POST", "/v1/sessions", { key: k1.secret, body: script("echo 3") }),
          "project.maxConcurrentSessions",
        )
        // A finished session frees its slot.
        yield* call(a, "DELETE", `/v1/sessions/${first.body.sessionId}`, { key: k1.secret })
        created(yield* call(b, "POST", "/v1/sessions", { key: k1.secret, body: script("echo 4") }))

        // Session-minutes per UTC day: a session of the project ran 2 minutes today; the quota is 1.
        yield* project("minutes", { maxSessionMinutesPerDay: 1 })
        const m = yield* key("minutes")
        const ran = yield* call(a, "POST", "/v1/sessions", { key: m.secret, body: script("echo ran") })
        created(ran)
        yield* Effect.scoped(Effect.gen(function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
          yield* sql`UPDATE sessions SET status = 'completed', started_at = now() - interval '2 minutes',
            completed_at = now() WHERE id = ${ran.body.sessionId}`
        })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
        const overMinutes = yield* call(b, "POST", "/v1/sessions", { key: m.secret, body: script("echo") })
        assertLimited(overMinutes, "project.maxSessionMinutesPerDay")
        assert.isAtMost(overMinutes.body.retryAfterSeconds, 86_400, "until the next UTC midnight")

        // A replica restarted: the counters were never in its memory.
        const restarted = yield* Effect.scoped(Effect.gen(function* () {
          const c = yield* replica(store)
          return yield* call(c, "POST", "/v1/sessions", { key: capped.secret, body: script("echo") })
        }))
        assertLimited(restarted, "key.maxConcurrentSessions")

        // Limits are changed over the API; null removes one.
        const lifted = yield* call(a, "PATCH", `/v1/keys/${capped.id}`, {
          body: { limits: { maxConcurrentSessions: null } },
        })
        assert.strictEqual(lifted.status, 200, lifted.text)
        assert.notProperty(lifted.body.limits, "maxConcurrentSessions")
        // Another replica's key cache may hold the old limits for up to 5 s: ask the one that changed it.
        created(yield* call(a, "POST", "/v1/sessions", { key: capped.secret, body: script("echo") }))
        const raised = yield* call(a, "PATCH", "/v1/projects/minutes", {
          body: { limits: { maxSessionMinutesPerDay: 5 } },
        })
        assert.strictEqual(raised.body.limits.maxSessionMinutesPerDay, 5)
        // (Project limits, like keys', are cached up to 5 s per replica: the one that changed them knows at once.)
        created(yield* call(a, "POST", "/v1/sessions", { key: m.secret, body: script("echo") }))
      }))

    it.effect("negative or absurd limits are a 400 naming the field", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const a = yield* replica(yield* db.fresh)
        const keys = yield* call(a, "GET", "/v1/keys")
        const id = keys.body[0].id
        const cases: Array<[string, string, unknown, string]> = [
          ["PATCH", `/v1/keys/${id}`, { limits: { requestsPerSecond: -1 } }, "limits.requestsPerSecond"],
          ["PATCH", `/v1/keys/${id}`, { limits: { maxConcurrentSessions: 1e12 } }, "limits.maxConcurrentSessions"],
          ["PATCH", `/v1/keys/${id}`, { limits: { requestsBurst: 0.5 } }, "limits.requestsBurst"],
          [
            "POST",
            "/v1/keys",
            { name: "x", scopes: ["read"], limits: { requestsPerSecond: 0 } },
            "limits.requestsPerSecond",
          ],
          [
            "POST",
            "/v1/projects",
            { id: "p", limits: { maxSessionMinutesPerDay: -5 } },
            "limits.maxSessionMinutesPerDay",
          ],
          [
            "PATCH",
            "/v1/projects/default",
            { limits: { maxConcurrentSessions: "ten" } },
            "limits.maxConcurrentSessions",
          ],
          ["PATCH", "/v1/projects/default", { approvalWebhook: "ftp://x" }, "approvalWebhook"],
        ]
        for (const [method, path, body, field] of cases) {
          const r = yield* call(a, method, path, { body })
          assert.strictEqual(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`)
          assert.include(r.body.issues.map((i: any) => i.path), field)
        }
        const unknownKey = yield* call(a, "PATCH", "/v1/keys/aaaaaaaaaaaa", { body: { limits: {} } })
        assert.strictEqual(unknownKey.status, 404)
        const unknownProject = yield* call(a, "PATCH", "/v1/projects/nope", { body: { limits: {} } })
        assert.strictEqual(unknownProject.status, 404)
      }))
  })
})
