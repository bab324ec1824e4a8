// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { connectLive } from "../../clients/src/LiveClient.ts"
import { call, pgliteBackend, script, TestControl } from "./harness.ts"

describe("audit log: the live API's mutating calls", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("createSession and cancelSession over /v1/rpc are recorded with the key that made them", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const connection = yield* Effect.acquireRelease(
            Effect.promise(() => connectLive(control.url, control.adminKey)),
            (c) => Effect.sync(c.close),
          )
          const accepted = yield* Effect.promise(() => connection.sessions.createSession(script("echo hi")))
          yield* Effect.promise(() => connection.sessions.cancelSession(accepted.sessionId))
          const missing = "01a24e25-b53c-7996-b7c7-2ab5e9698d70"
          yield* Effect.promise(() => connection.sessions.cancelSession(missing).catch(() => undefined))
          const page = yield* call(control, "GET", "/v1/audit?action=live.*")
          const admin = `key:${control.adminKey.split("_")[1]}`
          assert.deepStrictEqual(page.body.entries.map((e: any) => [e.actor, e.action, e.target, e.result]), [
            [admin, "live.sessions.create", accepted.sessionId, "ok"],
            [admin, "live.sessions.cancel", accepted.sessionId, "ok"],
            [admin, "live.sessions.cancel", missing, "SessionNotFound"],
          ])
        }))
    },
  )
})
