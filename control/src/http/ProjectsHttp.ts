import { Api, CurrentPrincipal, Forbidden, isInstanceAdmin, ProjectNotFound } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Projects } from "../Projects.ts"

const instanceAdmin = Effect.gen(function* () {
  const p = yield* CurrentPrincipal
  if (!isInstanceAdmin(p)) {
    return yield* new Forbidden({
      message: `projects are managed by instance admins (admin keys of the default project); ` +
        `this key belongs to project ${p.project}`,
      requiredScope: "admin",
    })
  }
})

export const ProjectsHttp = HttpApiBuilder.group(
  Api,
  "projects",
  Effect.fn(function* (handlers) {
    const projects = yield* Projects
    return handlers
      .handle("create", ({ payload }) => Effect.andThen(instanceAdmin, projects.create(payload)))
      .handle("list", () => Effect.andThen(instanceAdmin, projects.list))
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const p = yield* CurrentPrincipal
          // Another project's id is as unknown to a project admin as one that does not exist.
          if (!isInstanceAdmin(p) && p.project !== params.id) {
            return yield* new ProjectNotFound({ projectId: params.id, message: `no project ${params.id}` })
          }
          return yield* projects.get(params.id)
        }))
      .handle("update", ({ params, payload }) => Effect.andThen(instanceAdmin, projects.update(params.id, payload)))
      .handle("delete", ({ params }) => Effect.andThen(instanceAdmin, projects.remove(params.id)))
  }),
)
