import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ControlConfig } from "../src/ControlConfig.ts"
import { Vault } from "../src/Vault.ts"

const vaultWith = (env: Record<string, string>) =>
  Layer.fresh(
    Vault.layerKeyOnly.pipe(
      Layer.provide(ControlConfig.layer),
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))),
    ),
  )

const key = randomBytes(32)

describe("Vault", () => {
  it.effect("seals with AES-256-GCM: round-trips, binds the row id, detects tampering and wrong keys", () =>
    Effect.gen(function* () {
      const vault = yield* Vault
      const sealed = vault.seal('{"x-api-key":"sk-1"}', "session-a")
      assert.notInclude(sealed, "sk-1")
      assert.notStrictEqual(vault.seal('{"x-api-key":"sk-1"}', "session-a"), sealed, "fresh IV each time")
      assert.strictEqual(yield* vault.open(sealed, "session-a"), '{"x-api-key":"sk-1"}')
      const moved = yield* Effect.exit(vault.open(sealed, "session-b"))
      assert.isTrue(Exit.isFailure(moved), "a blob copied to another row does not open")
      const raw = Buffer.from(sealed.slice(3), "base64")
      raw[raw.length - 1]! ^= 1
      const tampered = yield* Effect.exit(vault.open(`v1.${raw.toString("base64")}`, "session-a"))
      assert.isTrue(Exit.isFailure(tampered))
      const other = yield* Effect.provide(Vault, vaultWith({ PAWS_VAULT_KEY: randomBytes(32).toString("hex") }))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(other.open(sealed, "session-a"))))
      assert.strictEqual(vault.fingerprint("a"), vault.fingerprint("a"))
      assert.notStrictEqual(vault.fingerprint("a"), vault.fingerprint("b"))
    }).pipe(Effect.provide(vaultWith({ PAWS_VAULT_KEY: key.toString("base64") }))))

  it.effect("without PAWS_VAULT_KEY, creates a 0600 key file once and reuses it", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "paws-test-vault-"))
      try {
        const env = { PAWS_DATA_DIR: join(dir, "data") }
        const first = yield* Effect.provide(Vault, vaultWith(env))
        const sealed = first.seal("secret", "row")
        const file = join(dir, "data", "vault.key")
        assert.strictEqual(statSync(file).mode & 0o777, 0o600)
        assert.strictEqual(Buffer.from(readFileSync(file, "utf8").trim(), "base64").length, 32)
        const second = yield* Effect.provide(Vault, vaultWith(env))
        assert.strictEqual(yield* second.open(sealed, "row"), "secret")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))

  it.effect("refuses a vault key that is not 32 bytes", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.provide(Vault, vaultWith({ PAWS_VAULT_KEY: "too-short" })))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "32 bytes")
    }))
})
