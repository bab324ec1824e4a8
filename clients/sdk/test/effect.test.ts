import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Redacted, Stream } from "effect"
import type { SessionId } from "@paws/core/Ids"
import { registerFakeNode } from "../../../control/test/FakeNode.ts"
import { pgliteBackend, TestControl } from "../../../control/test/harness.ts"
import { PawsApiClient, sessionEvents } from "../src/effect.ts"

const secret = "sk-effect-test-never-shown"

/** The SDK scenario with the Effect client; its reconnects are tested in clients/test/session-events.test.ts. */
describe("@paws/sdk/effect against a real control plane", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      const client = Effect.gen(function* () {
        const control = yield* TestControl
        const paws = yield* Effect.service(PawsApiClient).pipe(
          Effect.provide(PawsApiClient.layer({ baseUrl: control.url, apiKey: control.adminKey })),
        )
        return { control, paws, source: { url: control.url, apiKey: Redacted.make(control.adminKey) } }
      })

      it.effect("creates with credentials, follows events, cancels, pages, and surfaces typed errors", () =>
        Effect.gen(function* () {
          const { control, paws, source } = yield* client
          yield* registerFakeNode(control.registry, { id: "fx-n1", maxConcurrent: 4 })

          const accepted = yield* paws.sessions.create({
            payload: {
              workload: { type: "script", script: "echo fx" },
              network: {
                allowOut: ["api.example.com"],
                credentials: { "api.example.com": { headers: { "x-api-key": secret } } },
              },
            },
            headers: { "idempotency-key": "fx-1" },
          })
          const events = yield* Stream.runCollect(sessionEvents(source, accepted.sessionId))
          const tags = Array.from(events, (e) => e.event._tag === "status" ? e.event.status : e.event._tag)
          assert.deepStrictEqual(tags, [
            "pending",
            "starting",
            "running",
            "output",
            "output",
            "audit",
            "result",
            "completed",
          ])
          const session = yield* paws.sessions.get({ params: { id: accepted.sessionId } })
          assert.strictEqual(session.result?.exitCode, 0)
          assert.notInclude(JSON.stringify(session), secret)

          const hanging = yield* paws.sessions.create({
            payload: { workload: { type: "script", script: "hang" } },
            headers: {},
          })
          yield* sessionEvents(source, hanging.sessionId).pipe(
            Stream.takeUntil((e) => e.event._tag === "status" && e.event.status === "running"),
            Stream.runDrain,
          )
          yield* paws.sessions.cancel({ params: { id: hanging.sessionId } })
          const cancelled = yield* Stream.runCollect(sessionEvents(source, hanging.sessionId))
          const last = Array.from(cancelled).at(-1)?.event
          assert.isTrue(last?._tag === "status" && last.status === "cancelled", JSON.stringify(last))

          const first = yield* paws.sessions.list({ query: { limit: 1 } })
          assert.strictEqual(first.sessions[0]?.id, hanging.sessionId)
          const second = yield* paws.sessions.list({ query: { limit: 1, cursor: first.nextCursor as SessionId } })
          assert.strictEqual(second.sessions[0]?.id, accepted.sessionId)

          // Input the contract rejects fails before the wire, naming the field; the server's 401 arrives typed.
          const bad = yield* paws.sessions.create({
            payload: { workload: { type: "script", script: "" } },
            headers: {},
          }).pipe(
            Effect.flip,
          )
          assert.strictEqual(bad._tag, "SchemaError")
          assert.match(String(bad), /script/)
          const stranger = yield* Effect.service(PawsApiClient).pipe(
            Effect.provide(PawsApiClient.layer({ baseUrl: control.url, apiKey: "paws_not-a-key" })),
          )
          const denied = yield* stranger.sessions.list({ query: {} }).pipe(Effect.flip)
          assert.strictEqual(denied._tag, "Unauthorized")
          const missing = yield* paws.sessions.get({
            params: { id: "0190a8a8-0000-7000-8000-000000000000" as SessionId },
          })
            .pipe(Effect.flip)
          assert.strictEqual(missing._tag, "SessionNotFound")
        }))
    },
  )
})
