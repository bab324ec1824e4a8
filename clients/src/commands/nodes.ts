import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import type { NodeInfo } from "@paws/core"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

export const formatNodeRow = (n: NodeInfo): string =>
  [
    n.id.padEnd(16),
    n.status.padEnd(8),
    `${n.capacity.running}/${n.capacity.maxConcurrent} running`.padEnd(14),
    `${n.capacity.available} free`,
  ].join("  ")

export const nodes = Command.make("nodes", {
  json: Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false)),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const list = yield* api.nodes.list()
    if (input.json) return yield* Console.log(JSON.stringify(list, null, 2))
    if (list.length === 0) return yield* Console.log("no nodes (start one with `paws node` or `paws up`)")
    for (const n of list) yield* Console.log(formatNodeRow(n))
  }))).pipe(Command.withDescription("List nodes and their capacity"))
