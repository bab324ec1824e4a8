import { Api } from "@paws/core"
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { DaemonConfig } from "../daemons/DaemonConfig.ts"
import { DaemonInvoker } from "../daemons/DaemonInvoker.ts"
import { Daemons } from "../daemons/Daemons.ts"
import { DaemonStore } from "../daemons/DaemonStore.ts"
import { deliverHook } from "../daemons/HookDelivery.ts"
import { AuditLog } from "../audit/AuditLog.ts"
import { rateLimitedResponse } from "./RateLimitedResponse.ts"

/** Raw: the body is read as bytes by deliverHook, never decoded first, since its signature covers those bytes. */
export const HooksHttp = HttpApiBuilder.group(
  Api,
  "hooks",
  Effect.fn(function* (handlers) {
    const services = {
      config: yield* DaemonConfig,
      store: yield* DaemonStore,
      daemons: yield* Daemons,
      invoker: yield* DaemonInvoker,
      audit: yield* AuditLog,
    }
    return handlers.handleRaw("deliver", ({ params, request }) =>
      deliverHook(params, request).pipe(
        Effect.provideService(DaemonConfig, services.config),
        Effect.provideService(DaemonStore, services.store),
        Effect.provideService(Daemons, services.daemons),
        Effect.provideService(DaemonInvoker, services.invoker),
        Effect.provideService(AuditLog, services.audit),
        // Over a limit or unplaceable: the sender learns why (429 / 409), and the session was never made.
        Effect.catchTags({
          RateLimited: (e) => Effect.succeed(rateLimitedResponse(e)),
          SnapshotUnavailable: (e) =>
            Effect.succeed(HttpServerResponse.jsonUnsafe({ _tag: e._tag, snapshot: e.snapshot, message: e.message }, {
              status: 409,
            })),
        }),
      ))
  }),
)
