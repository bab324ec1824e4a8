import { assert, layer } from "@effect/vitest"
import { Effect, Stream } from "effect"
import type { SessionEvent } from "@paws/core"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { assertNothingLeft, dispatchOf } from "./support/Sessions.ts"
import { testNodeLayer } from "./support/TestNode.ts"

/** Two held POSTs from the guest: the first is approved, the second denied. */
const script = `
curl -sS -o /dev/null -w 'first=%{http_code}\\n' -X POST --data one https://api.test/v1/merges
curl -sS -w '\\nsecond=%{http_code}\\n' -X POST --data two https://api.test/v1/merges
curl -sS -o /dev/null -w 'free=%{http_code}\\n' https://api.test/v1/messages
`

layer(testNodeLayer(), { excludeTestServices: true, timeout: 180_000 })(
  "session egress approval (real VM, real proxy)",
  (it) => {
    it.effect("the guest's held request waits for the node's decision: approved it passes, denied it is a 403", () =>
      Effect.scoped(Effect.gen(function* () {
        const sessions = yield* LiveSessions
        const dispatch = dispatchOf(script, {
          network: {
            allowOut: ["api.test"],
            credentials: {},
            approvals: ["POST api.test/v1/merges"],
            approvalTimeoutMs: 60_000,
          },
        })
        const held: Array<Extract<SessionEvent, { _tag: "egress_approval" }>> = []
        const events = yield* sessions.run(dispatch).pipe(
          Stream.tap((e) =>
            e._tag !== "egress_approval" ? Effect.void : Effect.gen(function* () {
              held.push(e)
              yield* sessions.decideEgress(dispatch.sessionId, e.requestId, held.length === 1)
            })
          ),
          Stream.runCollect,
        )
        const result = Array.from(events).find((e) => e._tag === "result")
        const stdout = result?._tag === "result" ? result.result.stdout : ""
        assert.strictEqual(held.length, 2, stdout)
        assert.deepInclude(held[0]!, {
          host: "api.test",
          method: "POST",
          path: "/v1/merges",
          rule: "POST api.test/v1/merges",
        })
        assert.include(stdout, "first=200")
        assert.include(stdout, "second=403")
        assert.include(stdout, "needs a human's approval")
        assert.include(stdout, "free=200", "a request the rule does not name is not held")
        yield* assertNothingLeft
      })))
  },
)
