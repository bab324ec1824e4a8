import { assert, describe, it } from "@effect/vitest"
import type { Session, SessionEvent, SessionId } from "@paws/core"
import { Effect, Stream } from "effect"
import type { EventFeed } from "../src/EventFeed.ts"
import { sessionEventRows } from "../src/http/EventStream.ts"
import type { SessionStore, StoredEvent } from "../src/SessionStore.ts"

const id = "01900000-0000-7000-8000-000000000001" as SessionId
const at = "2026-11-22T00:00:00.000Z"
const status = (s: "running" | "completed"): SessionEvent => ({ _tag: "status", status: s, at })

/**
 * A store whose terminal status commits between the stream's (empty) events read and its
 * session read: the race the CI run of live-rpc.test.ts lost.
 */
const racingStore = () => {
  const rows: Array<StoredEvent> = [{ id: "1", event: status("running") }]
  let sessionStatus: Session["status"] = "running"
  let reads = 0
  const store = {
    events: (_: SessionId, after: string) =>
      Effect.sync(() => {
        reads++
        const found = rows.filter((r) => Number(r.id) > Number(after))
        // Right after the first empty read, the node's final status lands.
        if (found.length === 0 && sessionStatus === "running") {
          rows.push({ id: "2", event: status("completed") })
          sessionStatus = "completed"
        }
        return found
      }),
    get: () => Effect.succeed({ id, status: sessionStatus } as Session),
  } as unknown as SessionStore["Service"]
  return { store, reads: () => reads }
}

const feed = { publish: () => Effect.void, waitFor: () => Effect.void } as unknown as EventFeed["Service"]

describe("sessionEventRows", () => {
  it.effect("delivers a terminal status that commits between the events read and the session read", () =>
    Effect.gen(function* () {
      const { store } = racingStore()
      const pages = yield* Stream.runCollect(sessionEventRows(store, feed, id, "0"))
      const ids = pages.flatMap((p) => p === undefined ? [] : p.map((r) => r.id))
      assert.deepStrictEqual(ids, ["1", "2"])
    }))

  it.effect("ends once the session is terminal and nothing new is stored", () =>
    Effect.gen(function* () {
      const { store, reads } = racingStore()
      const pages = yield* Stream.runCollect(sessionEventRows(store, feed, id, "2"))
      assert.deepStrictEqual(pages.filter((p) => p !== undefined && p.length > 0), [])
      assert.isAtMost(reads(), 3)
    }))
})
