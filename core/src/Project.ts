import { Schema } from "effect"
import { ProjectLimits } from "./Limits.ts"

/** Every key, session and (later) daemon belongs to one project; `default` always exists. */
export const defaultProject = "default"

export const ProjectId = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: "must be 1-63 chars of a-z 0-9 - (not starting with -)" }),
  ),
).annotate({ identifier: "ProjectId" })

export const Project = Schema.Struct({
  id: ProjectId,
  description: Schema.String,
  limits: ProjectLimits,
  /** POSTed a JSON body when a session of this project starts waiting for approval; null: none. */
  approvalWebhook: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
}).annotate({ identifier: "Project" })
export type Project = typeof Project.Type

const WebhookUrl = Schema.String.pipe(
  Schema.check(
    Schema.isMaxLength(2048),
    Schema.makeFilter((s: string) => {
      try {
        const u = new URL(s)
        return u.protocol === "http:" || u.protocol === "https:" || "must be an http(s) URL"
      } catch {
        return "must be an http(s) URL"
      }
    }),
  ),
)

const Description = Schema.String.pipe(
  Schema.check(
    Schema.isMaxLength(512),
    Schema.makeFilter((s: string) => (!s.includes("\u0000") && s.isWellFormed()) || "must not contain NUL"),
  ),
)

export const CreateProject = Schema.Struct({
  id: ProjectId,
  description: Schema.optionalKey(Description),
  limits: Schema.optionalKey(ProjectLimits),
  approvalWebhook: Schema.optionalKey(Schema.NullOr(WebhookUrl)),
}).annotate({ identifier: "CreateProject" })
export type CreateProject = typeof CreateProject.Type

/** Fields given replace the stored ones; `limits` fields given replace those limits only. */
export const UpdateProject = Schema.Struct({
  description: Schema.optionalKey(Description),
  limits: Schema.optionalKey(ProjectLimits),
  approvalWebhook: Schema.optionalKey(Schema.NullOr(WebhookUrl)),
}).annotate({ identifier: "UpdateProject" })
export type UpdateProject = typeof UpdateProject.Type

export class ProjectNotFound extends Schema.TaggedError<ProjectNotFound>()("ProjectNotFound", {
  projectId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

export class ProjectConflict extends Schema.TaggedError<ProjectConflict>()("ProjectConflict", {
  projectId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}
