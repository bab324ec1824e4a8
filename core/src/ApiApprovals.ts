import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { IllegalTransition, SessionNotFound } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { Session } from "./Session.ts"

/** A session waiting for a human: what `paws approvals list` shows. */
export const PendingApproval = Schema.Struct({
  sessionId: SessionId,
  createdAt: Schema.String,
  /** When it is denied automatically; null: it waits until decided. */
  expiresAt: Schema.NullOr(Schema.String),
  session: Session,
}).annotate({ identifier: "PendingApproval" })
export type PendingApproval = typeof PendingApproval.Type

/** Approval gates: sessions created with `requiresApproval` wait in `awaiting_approval` for a decision. */
export class ApprovalsApi extends HttpApiGroup.make("approvals")
  .add(
    HttpApiEndpoint.get("list", "/v1/approvals", { success: Schema.Array(PendingApproval) })
      .pipe(
        scoped(
          "read",
          "List sessions awaiting approval",
          "Sessions of this key's project awaiting approval, oldest first.",
        ),
      ),
    HttpApiEndpoint.post("approve", "/v1/sessions/:id/approve", {
      params: { id: SessionId },
      success: Session,
      error: [SessionNotFound, IllegalTransition],
    }).pipe(scoped(
      "approve",
      "Approve a session",
      "Queue a session that is awaiting approval. A session in any other status (or whose approval expired) is a 409.",
    )),
    HttpApiEndpoint.post("deny", "/v1/sessions/:id/deny", {
      params: { id: SessionId },
      success: Session,
      error: [SessionNotFound, IllegalTransition],
    }).pipe(scoped(
      "approve",
      "Deny a session",
      "Cancel a session that is awaiting approval (reason `approval_denied`). Any other status is a 409.",
    )),
  )
  .annotateMerge(OpenApi.annotations({ description: "Approval gates: sessions that wait for a human decision." })) {}
