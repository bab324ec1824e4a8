import { Api, CurrentPrincipal } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Approvals } from "../Approvals.ts"
import { EgressApprovals } from "../EgressApprovals.ts"

export const ApprovalsHttp = HttpApiBuilder.group(
  Api,
  "approvals",
  Effect.fn(function* (handlers) {
    const approvals = yield* Approvals
    const egress = yield* EgressApprovals
    return handlers
      .handle("pending", () => Effect.flatMap(CurrentPrincipal, (p) => approvals.list(p.project)))
      .handle("approve", ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => approvals.approve(params.id, p)))
      .handle("deny", ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => approvals.deny(params.id, p)))
      .handle("egress", ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => egress.list(params.id, p)))
      .handle(
        "approveEgress",
        ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => egress.decide(params.id, params.requestId, true, p)),
      )
      .handle(
        "denyEgress",
        ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => egress.decide(params.id, params.requestId, false, p)),
      )
  }),
)
