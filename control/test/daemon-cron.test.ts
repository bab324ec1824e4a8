// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Cron, Effect, Exit, Redacted, Scope } from "effect"
import { Reactivity } from "effect/reactivity"
import { createDecipheriv, randomBytes } from "node:crypto"
import { planTicks } from "../src/daemons/CronTicks.ts"
import { call, postgresBackend, startControl, TestDatabase } from "./harness.ts"

/** A session's trigger payload, read straight from the database and opened with the vault key. */
const openInput = (key: Buffer, id: string, sealed: string): any => {
  const raw = Buffer.from(sealed.slice("v1.".length), "base64")
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12))
  decipher.setAAD(Buffer.from(`${id}:input`))
  decipher.setAuthTag(raw.subarray(12, 28))
  const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8")
  return JSON.parse(JSON.parse(plain).files["event.json"])
}

describe("cron ticks (pure)", () => {
  const everySecond = Cron.parseUnsafe("* * * * * *", "UTC")
  const t0 = new Date("2026-01-01T00:00:00Z")
  const at = (s: number) => new Date(t0.getTime() + s * 1000)
  it("one due tick fires; none is nothing; missed ticks run once or are skipped", () => {
    assert.isUndefined(planTicks(everySecond, t0, new Date(t0.getTime() + 999), "skip", 2000))
    assert.deepStrictEqual(planTicks(everySecond, t0, at(1), "skip", 2000), {
      advanceTo: at(1),
      fire: true,
      covered: 1,
    })
    assert.deepStrictEqual(planTicks(everySecond, t0, at(10), "once", 2000), {
      advanceTo: at(10),
      fire: true,
      covered: 10,
    })
    // Latest missed tick still on time: it runs; long past: nothing runs, the schedule moves on.
    assert.deepStrictEqual(planTicks(everySecond, t0, at(10), "skip", 2000), {
      advanceTo: at(10),
      fire: true,
      covered: 1,
    })
    assert.deepStrictEqual(planTicks(everySecond, t0, new Date(at(10).getTime() + 5000), "skip", 2000), {
      advanceTo: at(15),
      fire: true,
      covered: 1,
    })
    const hourly = Cron.parseUnsafe("0 * * * *", "Europe/Paris")
    assert.deepStrictEqual(planTicks(hourly, t0, at(3 * 3600 + 30), "skip", 2000), {
      advanceTo: at(3 * 3600),
      fire: false,
      covered: 1,
    })
  })
})

describe("cron with two control replicas on one PostgreSQL", () => {
  layer(postgresBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("every tick is fired exactly once, also across a replica dying with the lease", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        const vaultKey = randomBytes(32)
        const env = {
          PAWS_VAULT_KEY: vaultKey.toString("base64"),
          PAWS_CRON_POLL_MS: "100",
          PAWS_DAEMON_LEASE_MS: "1000",
        }
        const scopeA = yield* Scope.make()
        const a = yield* startControl(store, env).pipe(Scope.provide(scopeA))
        const b = yield* startControl({ ...store, dataDir: store.dataDir }, env)
        const created = yield* call(a, "POST", "/v1/daemons", {
          body: {
            name: "ticker",
            workload: { type: "script", script: "date" },
            // Six fields: seconds first, so a test sees ticks in seconds rather than minutes.
            triggers: [{ kind: "cron", name: "every-second", schedule: "* * * * * *", missed: "once" }],
          },
        })
        assert.strictEqual(created.status, 201, created.text)
        yield* Effect.sleep(3_500)
        yield* Scope.close(scopeA, Exit.void) // replica A stops, possibly holding the lease
        const killedAt = Date.now()
        yield* Effect.sleep(4_000)
        yield* call(b, "PATCH", "/v1/daemons/ticker", { body: { enabled: false } })

        const rows = yield* Effect.scoped(Effect.gen(function* () {
          const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
          return yield* sql<{ id: string; idempotency_key: string; input: string }>`SELECT id, idempotency_key, input
            FROM sessions WHERE daemon = 'ticker' ORDER BY id`
        })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
        const events = rows.map((r) => openInput(vaultKey, String(r.id), r.input))
          .sort((x, y) => Date.parse(x.tick) - Date.parse(y.tick))
        assert.isAtLeast(events.length, 5, JSON.stringify(events))
        const ticks = events.map((e) => e.tick)
        assert.strictEqual(new Set(ticks).size, ticks.length, `a tick fired twice: ${ticks}`)
        // Each invocation stands for exactly the ticks since the one before: none lost, none doubled.
        for (let i = 1; i < events.length; i++) {
          const seconds = (Date.parse(events[i].tick) - Date.parse(events[i - 1].tick)) / 1000
          assert.strictEqual(events[i].coveredTicks, seconds, JSON.stringify(events.slice(i - 1, i + 1)))
        }
        assert.isTrue(events.some((e) => Date.parse(e.tick) > killedAt), "replica B took over")
        for (const r of rows) {
          assert.strictEqual(r.idempotency_key, `cron:every-second:${openInput(vaultKey, String(r.id), r.input).tick}`)
        }
      }))

    it.effect("a tick claimed by a replica that died before firing it is fired once by the next pass", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        const vaultKey = randomBytes(32)
        const control = yield* startControl(store, {
          PAWS_VAULT_KEY: vaultKey.toString("base64"),
          PAWS_CRON_POLL_MS: "100",
          PAWS_DAEMON_LEASE_MS: "1000",
        })
        const created = yield* call(control, "POST", "/v1/daemons", {
          body: {
            name: "yearly",
            workload: { type: "script", script: "date" },
            triggers: [{ kind: "cron", name: "new-year", schedule: "0 0 1 1 *" }],
          },
        })
        assert.strictEqual(created.status, 201, created.text)
        const query = <A extends object>(f: (sql: any) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
          Effect.scoped(Effect.gen(function* () {
            const sql = yield* PgClient.make({ url: Redacted.make(store.databaseUrl!), maxConnections: 1 })
            return yield* f(sql)
          })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
        // What a replica leaves when it dies between claiming the tick and creating its session.
        yield* query((sql) =>
          sql`INSERT INTO daemon_trigger_state (daemon, trigger, last_tick, last_value)
            VALUES ('yearly', 'new-year', '2026-01-01T00:00:00Z', 'fire:1')
            ON CONFLICT (daemon, trigger) DO UPDATE SET last_tick = EXCLUDED.last_tick, last_value = EXCLUDED.last_value
            RETURNING daemon`
        )
        const sessions = () =>
          Effect.map(call(control, "GET", "/v1/sessions?daemon=yearly"), (r) => r.body.sessions as Array<any>)
        const deadline = Date.now() + 10_000
        while ((yield* sessions()).length === 0 && Date.now() < deadline) yield* Effect.sleep(50)
        yield* Effect.sleep(1_000) // ten more passes
        const fired = yield* sessions()
        assert.strictEqual(fired.length, 1, JSON.stringify(fired))
        const rows = yield* query<{ id: string; input: string; last_value: string }>((sql) =>
          sql`SELECT s.id, s.input, t.last_value FROM sessions s, daemon_trigger_state t
            WHERE s.daemon = 'yearly' AND t.daemon = 'yearly'`
        )
        assert.strictEqual(openInput(vaultKey, String(rows[0]!.id), rows[0]!.input).tick, "2026-01-01T00:00:00.000Z")
        assert.strictEqual(rows[0]!.last_value, "fired")
      }))
  })
})
