import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { registerFakeNode } from "../../control/test/FakeNode.ts"
import { call, pgliteBackend, script, TestControl, waitForSession } from "../../control/test/harness.ts"
import { paws } from "./support/CliProcess.ts"

// `paws shell` against a real control whose node ends the shell stream without an exit status (the in-process
// FakeNode has no shells, as a cancelled session's node has none): the CLI must not report success.
// The VM version (cancel under an open shell) is in e2e-live-pooled.test.ts.
describe("paws shell when the connection drops", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("a shell closed without an exit status exits 1 with a message naming the session", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "fake-1", maxConcurrent: 2 })
          const created = yield* call(control, "POST", "/v1/sessions", { body: script("hang") })
          assert.strictEqual(created.status, 202, created.text)
          const id: string = created.body.sessionId
          yield* waitForSession(control, id, (s) => s.status === "running")
          const env = { PAWS_URL: control.url, PAWS_API_KEY: control.adminKey, PAWS_CONFIG: "/nonexistent/paws.json" }
          const shell = yield* Effect.promise(() => paws(["shell", id], env))
          assert.strictEqual(shell.code, 1, shell.stderr)
          assert.include(shell.stderr, "without an exit status")
          assert.include(shell.stderr, `paws sessions get ${id}`)
        }).pipe(Effect.scoped))
    },
  )
})
