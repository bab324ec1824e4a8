import { Api, CurrentPrincipal } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { DaemonInvoker } from "../daemons/DaemonInvoker.ts"
import { Daemons } from "../daemons/Daemons.ts"
import { answerRateLimited } from "./RateLimitedResponse.ts"

/** Daemons of the caller's project; another project's daemon is a 404, exactly like an unknown name. */
export const DaemonsHttp = HttpApiBuilder.group(
  Api,
  "daemons",
  Effect.fn(function* (handlers) {
    const daemons = yield* Daemons
    const invoker = yield* DaemonInvoker
    const inProject = <A, E, R>(f: (project: string) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(CurrentPrincipal, (p) => f(p.project))
    return handlers
      .handle("create", ({ payload }) => inProject((project) => daemons.create(payload, project)))
      .handle("list", () => inProject(daemons.list))
      .handle("get", ({ params }) => inProject((project) => daemons.get(params.name, project)))
      .handle("update", ({ params, payload }) => inProject((project) => daemons.update(params.name, payload, project)))
      .handle("delete", ({ params }) => inProject((project) => daemons.remove(params.name, project)))
      .handle("run", ({ params }) =>
        inProject((project) =>
          Effect.gen(function* () {
            const daemon = yield* daemons.stored(params.name, project)
            return yield* answerRateLimited(invoker.invoke(daemon, { kind: "manual", name: "manual" }, {
              kind: "manual",
              at: new Date().toISOString(),
            }))
          })
        ))
  }),
)
