import { Api } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { NodeTokens } from "../NodeTokens.ts"

export const NodeTokensHttp = HttpApiBuilder.group(
  Api,
  "nodeTokens",
  Effect.fn(function* (handlers) {
    const tokens = yield* NodeTokens
    return handlers
      .handle("create", ({ payload }) => tokens.create(payload.name, payload))
      .handle("list", () => tokens.list)
      .handle("revoke", ({ params }) => tokens.revoke(params.id))
  }),
)
