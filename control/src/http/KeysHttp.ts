import { Api } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { ApiKeys } from "../ApiKeys.ts"

export const KeysHttp = HttpApiBuilder.group(
  Api,
  "keys",
  Effect.fn(function* (handlers) {
    const keys = yield* ApiKeys
    return handlers
      .handle("create", ({ payload }) => keys.create(payload.name, payload.scopes))
      .handle("list", () => keys.list)
      .handle("revoke", ({ params }) => keys.revoke(params.id))
  }),
)
