import { Api, ServiceUnavailable } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { MemoryStore } from "../MemoryStore.ts"

/** Daemons keep their memory under `daemon:<name>`; an unknown name simply has no history. */
export const DaemonHistoryHttp = HttpApiBuilder.group(
  Api,
  "daemonHistory",
  Effect.fn(function* (handlers) {
    const memory = yield* MemoryStore
    return handlers.handle(
      "history",
      ({ params, query }) =>
        memory.history(`daemon:${params.name}`, query.limit ?? 100).pipe(
          Effect.map((entries) => ({ daemon: params.name, entries })),
          // A history sealed under another vault key cannot be read: say so, never a 500.
          Effect.catchTag("VaultError", (e) => Effect.fail(new ServiceUnavailable({ message: e.message }))),
        ),
    )
  }),
)
