import { Api } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { DaemonInvoker } from "../daemons/DaemonInvoker.ts"
import { Daemons, notFound } from "../daemons/Daemons.ts"
import { DaemonStore } from "../daemons/DaemonStore.ts"

export const DaemonsHttp = HttpApiBuilder.group(
  Api,
  "daemons",
  Effect.fn(function* (handlers) {
    const daemons = yield* Daemons
    const store = yield* DaemonStore
    const invoker = yield* DaemonInvoker
    return handlers
      .handle("create", ({ payload }) => daemons.create(payload))
      .handle("list", () => daemons.list)
      .handle("get", ({ params }) => daemons.get(params.name))
      .handle("update", ({ params, payload }) => daemons.update(params.name, payload))
      .handle("delete", ({ params }) => daemons.remove(params.name))
      .handle("run", ({ params }) =>
        Effect.gen(function* () {
          const daemon = yield* store.get(params.name)
          if (daemon === undefined) return yield* notFound(params.name)
          return yield* invoker.invoke(daemon, { kind: "manual", name: "manual" }, {
            kind: "manual",
            at: new Date().toISOString(),
          })
        }))
  }),
)
