import { Api } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Snapshots } from "../Snapshots.ts"

export const SnapshotsHttp = HttpApiBuilder.group(
  Api,
  "snapshots",
  Effect.fn(function* (handlers) {
    const snapshots = yield* Snapshots
    return handlers
      .handle("create", ({ payload }) => snapshots.create(payload))
      .handle("list", () => snapshots.list)
      .handle("get", ({ params }) => snapshots.get(params.name))
      .handle("delete", ({ params }) => snapshots.remove(params.name))
  }),
)
