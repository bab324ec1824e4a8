import { Api, CurrentPrincipal, decodeAuditCursor, isInstanceAdmin, ProjectNotFound } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { AuditLog } from "../audit/AuditLog.ts"
import { projectVerdict } from "../audit/AuditProjects.ts"

export const AuditHttp = HttpApiBuilder.group(
  Api,
  "audit",
  Effect.fn(function* (handlers) {
    const audit = yield* AuditLog
    const sql = yield* SqlClient.SqlClient
    return handlers
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const principal = yield* CurrentPrincipal
          // A project's key reads only its project; naming another is as if it did not exist.
          const admin = isInstanceAdmin(principal)
          if (!admin && query.project !== undefined && query.project !== principal.project) {
            return yield* new ProjectNotFound({ projectId: query.project, message: `no project ${query.project}` })
          }
          return yield* audit.list({
            project: admin ? query.project : principal.project,
            actor: query.actor,
            daemon: query.daemon,
            session: query.session,
            action: query.action,
            since: query.since,
            until: query.until,
            // The query schema already refused a cursor that does not decode.
            afterId: query.cursor === undefined ? 0 : decodeAuditCursor(query.cursor) ?? 0,
            limit: query.limit ?? 100,
          })
        }))
      .handle("verify", () =>
        Effect.gen(function* () {
          const principal = yield* CurrentPrincipal
          const verdict = yield* audit.verify
          return isInstanceAdmin(principal) ? verdict : yield* projectVerdict(sql, principal.project, verdict)
        }))
  }),
)
