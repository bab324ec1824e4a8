import { assert, describe, layer } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { chmodSync } from "node:fs"
import { join } from "node:path"
import { pgliteBackend, startControl, TestDatabase } from "./harness.ts"

const startError = (store: { readonly dataDir: string; readonly databaseUrl: string | undefined }) =>
  Effect.map(
    Effect.exit(Effect.scoped(startControl(store))),
    (exit) => (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "started"),
  )

describe("control refuses secrets that other users can reach", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("a data dir or vault.key with group/world access stops control at start, with the chmod that fixes it", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const store = yield* db.fresh
        yield* Effect.scoped(startControl(store)) // creates vault.key (0600) in a 0700 dir

        chmodSync(store.dataDir, 0o755)
        const dir = yield* startError(store)
        assert.include(dir, `chmod 700 ${store.dataDir}`)
        assert.include(dir, "mode 0755")
        chmodSync(store.dataDir, 0o700)

        const key = join(store.dataDir, "vault.key")
        chmodSync(key, 0o640)
        const file = yield* startError(store)
        assert.include(file, `chmod 600 ${key}`)
        chmodSync(key, 0o600)

        assert.strictEqual(yield* startError(store), "started", "private again: it starts")
      }))
  })
})
