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

/** A request a session's proxy held for a human (network.approvals). */
export const EgressApprovalView = Schema.Struct({
  requestId: Schema.String,
  rule: Schema.String,
  host: Schema.String,
  method: Schema.String,
  /** Without query values. */
  path: Schema.String,
  /** `expired`: the proxy answered the guest 403 after the session's approval timeout. */
  status: Schema.Literals(["pending", "approved", "denied", "expired"]),
  requestedAt: Schema.String,
  expiresAt: Schema.String,
  decidedAt: Schema.NullOr(Schema.String),
  /** The API key that decided. */
  decidedBy: Schema.NullOr(Schema.String),
}).annotate({ identifier: "EgressApprovalView" })
export type EgressApprovalView = typeof EgressApprovalView.Type

export class EgressRequestNotFound extends Schema.TaggedError<EgressRequestNotFound>()("EgressRequestNotFound", {
  requestId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

export class EgressAlreadyDecided extends Schema.TaggedError<EgressAlreadyDecided>()("EgressAlreadyDecided", {
  requestId: Schema.String,
  status: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

const RequestId = Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 64)))

/** Approval gates: sessions created with `requiresApproval` wait in `awaiting_approval` for a decision. */
export class ApprovalsApi extends HttpApiGroup.make("approvals")
  .add(
    HttpApiEndpoint.get("pending", "/v1/approvals", { success: Schema.Array(PendingApproval) })
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
    HttpApiEndpoint.get("egress", "/v1/sessions/:id/egress-approvals", {
      params: { id: SessionId },
      success: Schema.Array(EgressApprovalView),
      error: SessionNotFound,
    }).pipe(scoped(
      "read",
      "List a session's held requests",
      "Requests the session's proxy held under `network.approvals`, oldest first, pending or decided.",
    )),
    HttpApiEndpoint.post("approveEgress", "/v1/sessions/:id/egress-approvals/:requestId/approve", {
      params: { id: SessionId, requestId: RequestId },
      success: EgressApprovalView,
      error: [SessionNotFound, EgressRequestNotFound, EgressAlreadyDecided],
    }).pipe(scoped(
      "approve",
      "Approve a held request",
      "The proxy forwards the held request. Already decided or expired: 409.",
    )),
    HttpApiEndpoint.post("denyEgress", "/v1/sessions/:id/egress-approvals/:requestId/deny", {
      params: { id: SessionId, requestId: RequestId },
      success: EgressApprovalView,
      error: [SessionNotFound, EgressRequestNotFound, EgressAlreadyDecided],
    }).pipe(scoped(
      "approve",
      "Deny a held request",
      "The proxy answers the guest 403 saying the request was denied. Already decided or expired: 409.",
    )),
  )
  .annotateMerge(OpenApi.annotations({ description: "Approval gates: sessions that wait for a human decision." })) {}
