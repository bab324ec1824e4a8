import { type AuditVerification, defaultProject } from "@paws/core"
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import type { AuditRecord } from "./AuditLog.ts"

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * The project of each record of a batch being appended: its own when set (the caller's key's,
 * inside an API request), else its session's, else its daemon's, else `default`. Rows written by
 * the system about a session (status changes, egress decisions) so land in that session's project.
 */
export const resolveProjects = (sql: SqlClient.SqlClient, batch: ReadonlyArray<AuditRecord>) =>
  Effect.gen(function* () {
    const open = batch.filter((r) => r.project === undefined)
    const sessionIds = [
      ...new Set(open.flatMap((r) => r.session !== undefined && uuid.test(r.session) ? [r.session] : [])),
    ]
    const daemonNames = [...new Set(open.flatMap((r) => r.daemon !== undefined ? [r.daemon] : []))]
    const ofSession = new Map<string, string>()
    const ofDaemon = new Map<string, string>()
    if (sessionIds.length > 0) {
      const rows = yield* sql<{ id: string; project: string }>`SELECT id::text AS id, project FROM sessions
        WHERE id IN ${sql.in(sessionIds)}`
      for (const r of rows) ofSession.set(r.id, r.project)
    }
    if (daemonNames.length > 0) {
      const rows = yield* sql<{ name: string; project: string }>`SELECT name, project FROM daemons
        WHERE name IN ${sql.in(daemonNames)}`
      for (const r of rows) ofDaemon.set(r.name, r.project)
    }
    return batch.map((r) =>
      r.project ??
        (r.session === undefined ? undefined : ofSession.get(r.session)) ??
        (r.daemon === undefined ? undefined : ofDaemon.get(r.daemon)) ??
        defaultProject
    )
  })

/**
 * A project key's view of a verify: the verdict is the whole chain's (every project's rows hash
 * into one chain), but a first broken row of another project is named by its id only.
 */
export const projectVerdict = (sql: SqlClient.SqlClient, project: string, v: AuditVerification) =>
  Effect.gen(function* () {
    const broken = v.firstBroken
    if (broken === null || broken.kind !== "row") return v
    const rows = yield* sql<{ project: string }>`SELECT project FROM audit WHERE id = ${broken.id}`
    if (rows[0]?.project === project) return v
    return {
      ...v,
      firstBroken: {
        ...broken,
        reason: `row ${broken.id}, outside project ${project}, does not fit the chain (or is missing); ` +
          "the instance admin's verify says why",
      },
    } satisfies AuditVerification
  }).pipe(Effect.orDie)
