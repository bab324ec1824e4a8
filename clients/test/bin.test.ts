import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { pgliteBackend, TestControl } from "../../control/test/harness.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const launcher = join(root, "clients/bin/paws.js")

const exec = (file: string, args: Array<string>, options: { cwd?: string; env?: Record<string, string> } = {}) =>
  promisify(execFile)(file, args, { cwd: options.cwd ?? root, env: { ...process.env, ...options.env } })
    .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }))
    .catch((e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }))

describe("the paws command (clients/bin/paws.js)", () => {
  it("`npx paws` runs the CLI in the checkout", async () => {
    const r = await exec("npx", ["--no-install", "paws", "--version"])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.match(r.stdout, /paws v\d+\.\d+\.\d+/)
  })

  it("without type stripping, re-runs the CLI under the checkout's own Node", async () => {
    // Under --no-experimental-strip-types importing src/bin.ts in-process would fail; the re-run makes it work.
    const r = await exec(process.execPath, ["--no-experimental-strip-types", launcher, "sessions", "--help"])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.match(r.stdout, /paws sessions <subcommand>/)
  })

  it("without a usable Node, says what to install", async () => {
    const dir = mkdtempSync(join(tmpdir(), "paws-launcher-"))
    try {
      copyFileSync(launcher, join(dir, "paws.mjs"))
      const r = await exec(process.execPath, ["--no-experimental-strip-types", join(dir, "paws.mjs"), "--version"])
      assert.strictEqual(r.code, 1)
      assert.match(r.stderr, /paws needs Node\.js 24 or newer.*npm install/s)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("`npm install -g ./clients` puts a working `paws` on PATH", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const prefix = mkdtempSync(join(tmpdir(), "paws-global-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(prefix, { recursive: true, force: true })))
          const installed = yield* Effect.promise(() =>
            exec("npm", [
              "install",
              "--global",
              "--prefix",
              prefix,
              "--offline",
              "--no-audit",
              "--no-fund",
              "./clients",
            ])
          )
          assert.strictEqual(installed.code, 0, installed.stderr)
          // From another directory, with only the installed bin (and node) on PATH.
          const path = `${join(prefix, "bin")}:${join(process.execPath, "..")}:/usr/bin:/bin`
          const env = { PATH: path, PAWS_URL: control.url, PAWS_API_KEY: control.adminKey }
          const created = yield* Effect.promise(() =>
            exec("paws", ["run", "-d", "--", "echo", "hi"], { cwd: prefix, env })
          )
          assert.strictEqual(created.code, 0, created.stderr)
          const listed = yield* Effect.promise(() => exec("paws", ["sessions", "list"], { cwd: prefix, env }))
          assert.strictEqual(listed.code, 0, listed.stderr)
          assert.include(listed.stdout, created.stdout.trim())
          const denied = yield* Effect.promise(() =>
            exec("paws", ["sessions", "list"], {
              cwd: prefix,
              env: { PATH: path, PAWS_URL: control.url, PAWS_API_KEY: "paws_not-a-key" },
            })
          )
          assert.strictEqual(denied.code, 1)
          assert.match(denied.stderr, /API key/)
        }))
    },
  )
})
