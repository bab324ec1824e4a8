import { Context } from "effect"
import type { AuditRecord } from "./AuditLog.ts"

/**
 * Rows recorded while one API call runs (a create's status row, a cancel's): held here and
 * appended with the call's own row, in one batch, before the response is sent. Awaiting each
 * separately cost one group commit per row and put every create behind two chain appends.
 * `open` goes false once the call's rows are written; a fiber that outlives the call then
 * writes its rows itself.
 */
export interface PendingAuditRows {
  open: boolean
  readonly rows: Array<AuditRecord>
}

export const PendingAudit = Context.Reference<PendingAuditRows | undefined>("paws/control/PendingAudit", {
  defaultValue: () => undefined,
})
