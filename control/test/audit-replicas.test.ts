// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { startControl } from "../../clients/test/support/CliProcess.ts"
import { TestPostgres } from "./TestPostgres.ts"

const writesPerReplica = 40

const post = (url: string, key: string, name: string) =>
  fetch(`${url}/v1/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ name, scopes: ["read"] }),
  }).then((r) => r.status)

const get = (url: string, key: string, path: string) =>
  fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.json() as Promise<any>)

describe("audit chain across two control processes on one PostgreSQL", () => {
  layer(TestPostgres.layer, { excludeTestServices: true, timeout: 180_000 })((it) => {
    it.effect("concurrent appends from both replicas form one linear chain that verifies on either", () =>
      Effect.scoped(Effect.gen(function* () {
        const pg = yield* TestPostgres
        const env = {
          DATABASE_URL: yield* pg.freshDatabase,
          PAWS_VAULT_KEY: randomBytes(32).toString("base64"),
          PAWS_LOG_LEVEL: "Info",
        }
        const a = yield* Effect.acquireRelease(Effect.promise(() => startControl(env)), (c) => Effect.promise(c.stop))
        const key = readFileSync(join(a.dir, ".paws", "admin.key"), "utf8").trim()
        const b = yield* Effect.acquireRelease(Effect.promise(() => startControl(env)), (c) => Effect.promise(c.stop))

        // Both processes append at once: every POST writes two rows (the key, the API call).
        const statuses = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: writesPerReplica }, (_, i) => [
              post(a.url, key, `a${i}`),
              post(b.url, key, `b${i}`),
            ]).flat(),
          )
        )
        assert.deepStrictEqual(new Set(statuses), new Set([201]))

        const expected = 1 + 4 * writesPerReplica // + the first admin key
        for (const replica of [a, b]) {
          const check = yield* Effect.promise(() => get(replica.url, key, "/v1/audit/verify"))
          assert.deepStrictEqual(
            [check.ok, check.checked, check.head.id, check.firstBroken],
            [true, expected, expected, null],
            JSON.stringify(check),
          )
        }
        const page = yield* Effect.promise(() => get(b.url, key, "/v1/audit?limit=1000&action=apikey.created"))
        const names = page.entries.map((e: any) => e.detail.name as string)
        // Both replicas wrote into the one chain.
        assert.strictEqual(names.filter((n: string) => /^a\d/.test(n)).length, writesPerReplica)
        assert.strictEqual(names.filter((n: string) => /^b\d/.test(n)).length, writesPerReplica)
      })))
  })
})
