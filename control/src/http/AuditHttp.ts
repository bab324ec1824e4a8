import { Api, decodeAuditCursor } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AuditLog } from "../audit/AuditLog.ts"

export const AuditHttp = HttpApiBuilder.group(
  Api,
  "audit",
  Effect.fn(function* (handlers) {
    const audit = yield* AuditLog
    return handlers
      .handle("list", ({ query }) =>
        audit.list({
          actor: query.actor,
          daemon: query.daemon,
          session: query.session,
          action: query.action,
          since: query.since,
          until: query.until,
          // The query schema already refused a cursor that does not decode.
          afterId: query.cursor === undefined ? 0 : decodeAuditCursor(query.cursor) ?? 0,
          limit: query.limit ?? 100,
        }))
      .handle("verify", () => audit.verify)
  }),
)
