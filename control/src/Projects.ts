import {
  type CreateProject,
  defaultProject,
  Project,
  ProjectConflict,
  type ProjectLimits,
  ProjectNotFound,
  type UpdateProject,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeys } from "./ApiKeys.ts"
import { iso, json, rowDecoder } from "./Rows.ts"

interface ProjectRow {
  readonly id: string
  readonly description: string
  readonly limits: unknown
  readonly approval_webhook: string | null
  readonly created_at: unknown
}

const decodeProject = rowDecoder(Project, "project")
const toProject = (row: ProjectRow): Project =>
  decodeProject({
    id: row.id,
    description: row.description,
    limits: json(row.limits),
    approvalWebhook: row.approval_webhook,
    createdAt: iso(row.created_at),
  })

const notFound = (id: string) => new ProjectNotFound({ projectId: id, message: `no project ${id}` })

/** Projects, the tenancy boundary; a deleted project keeps its row (its sessions refer to it) but not its keys. */
export class Projects extends Context.Service<Projects, {
  readonly create: (p: CreateProject) => Effect.Effect<Project, ProjectConflict>
  readonly list: Effect.Effect<ReadonlyArray<Project>>
  readonly get: (id: string) => Effect.Effect<Project, ProjectNotFound>
  readonly update: (id: string, p: UpdateProject) => Effect.Effect<Project, ProjectNotFound>
  readonly remove: (id: string) => Effect.Effect<void, ProjectNotFound | ProjectConflict>
  /**
   * A project's quotas for admitting a session, cached for 5 s (a change on another replica
   * applies within that); {} for an unknown project.
   */
  readonly limitsOf: (id: string) => Effect.Effect<ProjectLimits>
}>()("paws/control/Projects") {
  static readonly layer = Layer.effect(
    Projects,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const keys = yield* ApiKeys
      const limitsCache = new Map<string, { limits: ProjectLimits; at: number }>()

      const create = Effect.fn("Projects.create")(function* (p: CreateProject) {
        const rows = yield* sql<ProjectRow>`INSERT INTO projects (id, description, limits, approval_webhook)
          VALUES (${p.id}, ${p.description ?? ""}, ${JSON.stringify(p.limits ?? {})}::jsonb,
            ${p.approvalWebhook ?? null})
          ON CONFLICT (id) DO NOTHING RETURNING *`.pipe(Effect.orDie)
        if (rows[0] === undefined) {
          return yield* new ProjectConflict({
            projectId: p.id,
            message: `project ${p.id} exists (or existed: a deleted project's id is not reused)`,
          })
        }
        return toProject(rows[0])
      })

      const list = sql<ProjectRow>`SELECT * FROM projects WHERE deleted_at IS NULL ORDER BY id`.pipe(
        Effect.map((rows) => rows.map(toProject)),
        Effect.orDie,
      )

      const get = Effect.fn("Projects.get")(function* (id: string) {
        const rows = yield* sql<ProjectRow>`SELECT * FROM projects WHERE id = ${id} AND deleted_at IS NULL`
          .pipe(Effect.orDie)
        if (rows[0] === undefined) return yield* notFound(id)
        return toProject(rows[0])
      })

      const update = Effect.fn("Projects.update")(function* (id: string, p: UpdateProject) {
        const rows = yield* sql<ProjectRow>`UPDATE projects SET
            description = ${p.description === undefined ? sql`description` : sql`${p.description}`},
            limits = ${
          p.limits === undefined ? sql`limits` : sql`jsonb_strip_nulls(limits || ${JSON.stringify(p.limits)}::jsonb)`
        },
            approval_webhook = ${p.approvalWebhook === undefined ? sql`approval_webhook` : sql`${p.approvalWebhook}`}
          WHERE id = ${id} AND deleted_at IS NULL RETURNING *`.pipe(Effect.orDie)
        limitsCache.delete(id)
        if (rows[0] === undefined) return yield* notFound(id)
        return toProject(rows[0])
      })

      const limitsOf = (id: string) =>
        Effect.suspend(() => {
          const hit = limitsCache.get(id)
          if (hit !== undefined && Date.now() - hit.at < 5_000) return Effect.succeed(hit.limits)
          return get(id).pipe(
            Effect.map((p) => p.limits),
            Effect.orElseSucceed((): ProjectLimits => ({})),
            Effect.tap((limits) => Effect.sync(() => limitsCache.set(id, { limits, at: Date.now() }))),
          )
        })

      const remove = Effect.fn("Projects.remove")(function* (id: string) {
        if (id === defaultProject) {
          return yield* new ProjectConflict({ projectId: id, message: "the default project cannot be deleted" })
        }
        yield* get(id)
        const [{ n }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM sessions WHERE project = ${id}
          AND status IN ('awaiting_approval', 'pending', 'starting', 'running')`.pipe(Effect.orDie)) as [{ n: number }]
        if (n > 0) {
          return yield* new ProjectConflict({
            projectId: id,
            message: `project ${id} has ${n} unfinished session(s); cancel them first (paws sessions cancel)`,
          })
        }
        yield* sql`UPDATE projects SET deleted_at = now() WHERE id = ${id}`.pipe(Effect.orDie)
        yield* keys.revokeProject(id)
      })

      return Projects.of({ create, list, get, update, remove, limitsOf })
    }),
  )
}
