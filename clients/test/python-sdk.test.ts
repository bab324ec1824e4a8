import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { registerFakeNode } from "../../control/test/FakeNode.ts"
import { pgliteBackend, TestControl } from "../../control/test/harness.ts"
import { codeBlocks, runExample } from "../sdk/test/ReadmeExamples.ts"

/** Debian's python3 with python3-httpx (installed by .ci/setup), not whatever python3 is first on PATH. */
const python = "/usr/bin/python3"
const pythonDir = fileURLToPath(new URL("../python/", import.meta.url))
const run = (args: Array<string>, env: Record<string, string> = {}) =>
  promisify(execFile)(python, args, { cwd: pythonDir, env: { ...process.env, ...env }, timeout: 120_000 })
    .then(({ stdout, stderr }) => ({ code: 0, out: stdout + stderr }))
    .catch((e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }))

describe("the Python SDK (clients/python)", () => {
  it("is generated from the current spec (run `npm run spec` or `npm run sdk:generate` when this fails)", async () => {
    const { code, out } = await run(["generate.py", "--check"])
    assert.strictEqual(code, 0, out)
  })

  it("type-checks with mypy --strict (the package ships py.typed)", async () => {
    const cache = join(tmpdir(), "paws-mypy-cache")
    const { code, out } = await run(["-m", "mypy", "--strict", "--cache-dir", cache, "paws", "tests"])
    assert.strictEqual(code, 0, out)
    assert.match(out, /Success: no issues found/)
  }, 120_000)

  it("the staleness check fails once the spec changes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "paws-py-spec-"))
    try {
      const spec = JSON.parse(readFileSync(join(pythonDir, "../../spec/openapi.json"), "utf8"))
      spec.components.schemas.SessionAccepted.properties.queuedAt = { type: "string" }
      writeFileSync(join(dir, "openapi.json"), JSON.stringify(spec))
      const { code, out } = await run(["generate.py", "--check", "--spec", join(dir, "openapi.json")])
      assert.strictEqual(code, 1)
      assert.match(out, /stale: clients\/python\/paws\/models\.py/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("runs the SDK scenario (sync and async) against a real control plane", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "py-n1", maxConcurrent: 8 })
          const { code, out } = yield* Effect.promise(() =>
            run(["-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."], {
              PAWS_URL: control.url,
              PAWS_API_KEY: control.adminKey,
            })
          )
          assert.strictEqual(code, 0, out)
          assert.match(out, /Ran 10 tests/)
          assert.match(out, /\nOK\n/)
        }))

      it.effect("the README examples run as written", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "py-readme", maxConcurrent: 4 })
          const env = { PAWS_URL: control.url, PAWS_API_KEY: control.adminKey, PYTHONPATH: pythonDir }
          const [sync, async] = codeBlocks(join(pythonDir, "README.md"), "python")
          const dir = mkdtempSync(join(tmpdir(), "paws-py-readme-"))
          const syncOut = yield* Effect.promise(() => runExample(python, dir, "sync.py", sync!, env))
          const asyncOut = yield* Effect.promise(() => runExample(python, dir, "async.py", async!, env))
          rmSync(dir, { recursive: true, force: true })
          assert.match(syncOut, /status: running/)
          assert.match(syncOut, /hello from [0-9a-f-]{36}/)
          assert.match(syncOut, /exit code: 0/)
          assert.match(syncOut, /rejected: workload\.script/)
          assert.match(asyncOut, /hello from [0-9a-f-]{36}/)
          assert.match(asyncOut, /sessions: \d+/)
        }))
    },
  )
})
