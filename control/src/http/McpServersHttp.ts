import { Api } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { McpServers } from "../McpServers.ts"

export const McpServersHttp = HttpApiBuilder.group(
  Api,
  "mcpServers",
  Effect.fn(function* (handlers) {
    const servers = yield* McpServers
    return handlers
      .handle("create", ({ payload }) => servers.create(payload))
      .handle("list", () => servers.list)
      .handle("delete", ({ params }) => servers.remove(params.name))
  }),
)
