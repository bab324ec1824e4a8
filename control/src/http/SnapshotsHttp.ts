import { Api, CurrentPrincipal } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { makeProjectSnapshots } from "./ProjectSnapshots.ts"

/** Snapshots as the calling key's project sees them (ProjectSnapshots). */
export const SnapshotsHttp = HttpApiBuilder.group(
  Api,
  "snapshots",
  Effect.fn(function* (handlers) {
    const snapshots = yield* makeProjectSnapshots
    return handlers
      .handle("create", ({ payload }) => Effect.flatMap(CurrentPrincipal, (p) => snapshots.create(p, payload)))
      .handle("list", () => Effect.flatMap(CurrentPrincipal, snapshots.list))
      .handle("get", ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => snapshots.get(p, params.name)))
      .handle("delete", ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => snapshots.remove(p, params.name)))
  }),
)
