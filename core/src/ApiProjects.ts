import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { Forbidden } from "./Errors.ts"
import { CreateProject, Project, ProjectConflict, ProjectId, ProjectNotFound, UpdateProject } from "./Project.ts"

const instanceOnly = "Only an `admin` key of the `default` project (an instance admin) may call this; " +
  "others get 403."

/** Projects: the tenancy boundary. Managed by instance admins. */
export class ProjectsApi extends HttpApiGroup.make("projects")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: CreateProject,
      success: Project.pipe(HttpApiSchema.status(201)),
      error: [ProjectConflict, Forbidden],
    }).pipe(scoped(
      "admin",
      "Create a project",
      `Create a project with optional quotas and approval webhook; an existing id is a 409. ${instanceOnly}`,
    )),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(Project), error: Forbidden })
      .pipe(scoped("admin", "List projects", `List projects. ${instanceOnly}`)),
    HttpApiEndpoint.get("get", "/:id", { params: { id: ProjectId }, success: Project, error: ProjectNotFound })
      .pipe(scoped("admin", "Get a project", "An instance admin may read any project, a project's admin its own.")),
    HttpApiEndpoint.patch("update", "/:id", {
      params: { id: ProjectId },
      payload: UpdateProject,
      success: Project,
      error: [ProjectNotFound, Forbidden],
    }).pipe(scoped(
      "admin",
      "Update a project",
      `Change a project's quotas, description or approval webhook (null removes it). ${instanceOnly}`,
    )),
    HttpApiEndpoint.delete("delete", "/:id", {
      params: { id: ProjectId },
      success: HttpApiSchema.NoContent,
      error: [ProjectNotFound, ProjectConflict, Forbidden],
    }).pipe(scoped(
      "admin",
      "Delete a project",
      "Delete a project and revoke its keys; its finished sessions stay readable by no one but the database. " +
        `\`default\` cannot be deleted, nor a project with unfinished sessions (409). ${instanceOnly}`,
    )),
  )
  .prefix("/v1/projects")
  .annotateMerge(OpenApi.annotations({ description: "Projects: the tenancy boundary of keys and sessions." })) {}
