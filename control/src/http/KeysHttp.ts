import { Api, CurrentPrincipal, Forbidden, isInstanceAdmin } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { ApiKeys } from "../ApiKeys.ts"
import { Projects } from "../Projects.ts"

/** An instance admin manages every project's keys; a project's admin only its own. */
export const KeysHttp = HttpApiBuilder.group(
  Api,
  "keys",
  Effect.fn(function* (handlers) {
    const keys = yield* ApiKeys
    const projects = yield* Projects
    const within = Effect.map(CurrentPrincipal, (p) => (isInstanceAdmin(p) ? undefined : p.project))
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* CurrentPrincipal
          const project = payload.project ?? principal.project
          if (project !== principal.project && !isInstanceAdmin(principal)) {
            return yield* new Forbidden({
              message: `only an instance admin (an admin key of the default project) may create keys in ` +
                `another project than this key's (${principal.project})`,
              requiredScope: "admin",
            })
          }
          yield* projects.get(project)
          return yield* keys.create(payload.name, payload.scopes, project, payload.limits ?? {})
        }))
      .handle("list", () => Effect.flatMap(within, keys.list))
      .handle(
        "update",
        ({ params, payload }) =>
          Effect.flatMap(within, (project) => keys.updateLimits(params.id, payload.limits, project)),
      )
      .handle("revoke", ({ params }) => Effect.flatMap(within, (project) => keys.revoke(params.id, project)))
  }),
)
