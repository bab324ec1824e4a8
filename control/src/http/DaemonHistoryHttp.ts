import { Api, CurrentPrincipal, ServiceUnavailable } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { daemonMemoryKey } from "../daemons/DaemonInvoker.ts"
import { Daemons } from "../daemons/Daemons.ts"
import { MemoryStore } from "../MemoryStore.ts"

/** A daemon's recorded LLM history, under its memory key; an unknown daemon is a 404. */
export const DaemonHistoryHttp = HttpApiBuilder.group(
  Api,
  "daemonHistory",
  Effect.fn(function* (handlers) {
    const memory = yield* MemoryStore
    const daemons = yield* Daemons
    return handlers.handle(
      "history",
      ({ params, query }) =>
        Effect.flatMap(CurrentPrincipal, (p) => daemons.get(params.name, p.project)).pipe(
          Effect.andThen(memory.history(daemonMemoryKey(params.name), query.limit ?? 100)),
          Effect.map((entries) => ({ daemon: params.name, entries })),
          // A history sealed under another vault key cannot be read: say so, never a 500.
          Effect.catchTag("VaultError", (e) => Effect.fail(new ServiceUnavailable({ message: e.message }))),
        ),
    )
  }),
)
