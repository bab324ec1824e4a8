import { Console, Effect, Option } from "effect"
import type { Session } from "@paws/core"

/**
 * `paws run` progress while a session waits for a node (every node full): its place in the queue,
 * printed when it changes, until it leaves `pending`. `get` reads the session (GET /v1/sessions/{id},
 * which carries `queuePosition` while pending); a failed read just ends the report.
 */
export const reportQueuePosition = (
  sessionId: string,
  get: Effect.Effect<Option.Option<Pick<Session, "status" | "queuePosition">>>,
  every: number = 2000,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    let shown: number | undefined
    for (;;) {
      const s = yield* get
      if (Option.isNone(s) || s.value.status !== "pending") return
      const position = s.value.queuePosition
      if (position !== undefined && position !== shown) {
        yield* Console.error(`session ${sessionId} queued: position ${position} (waiting for a free node)`)
        shown = position
      }
      yield* Effect.sleep(every)
    }
  })
