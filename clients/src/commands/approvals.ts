import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"
import type { Session } from "@paws/core/Session"
import { workloadText } from "@paws/core/SessionSpec"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const sessionId = Argument.String("id").pipe(Argument.withDescription("session id"))

const list = Command.make("list", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const waiting = yield* api.approvals.pending()
    if (waiting.length === 0) return yield* Console.log("nothing awaits approval")
    for (const a of waiting) {
      const first = workloadText(a.session.spec.workload).text.split("\n")[0]!.slice(0, 60)
      yield* Console.log([a.sessionId, a.createdAt, `expires ${a.expiresAt ?? "never"}`, first].join("  "))
    }
  }))).pipe(Command.withDescription("List sessions of this key's project awaiting approval"), Command.withAlias("ls"))

const decide = (name: "approve" | "deny") =>
  Command.make(name, { id: sessionId }, (input) =>
    withApi(Effect.gen(function* () {
      const api = yield* ApiClient
      const params = { params: { id: input.id as Session["id"] } }
      const s = yield* (name === "approve" ? api.approvals.approve(params) : api.approvals.deny(params))
      yield* Console.log(`${s.id} ${s.status}`)
    }))).pipe(Command.withDescription(
      name === "approve" ? "Approve a waiting session: it is queued" : "Deny a waiting session: it is cancelled",
    ))

const requestId = Argument.String("request").pipe(Argument.withDescription("held request id (from `egress list`)"))

const egressList = Command.make("list", { id: sessionId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const held = yield* api.approvals.egress({ params: { id: input.id as Session["id"] } })
    if (held.length === 0) return yield* Console.log("no held requests")
    for (const h of held) {
      yield* Console.log(
        [h.requestId, h.status.padEnd(8), `${h.method} ${h.host}${h.path}`, `(rule ${h.rule})`].join("  "),
      )
    }
  }))).pipe(Command.withDescription("Requests a session's proxy holds (or held) under network.approvals"))

const egressDecide = (name: "approve" | "deny") =>
  Command.make(name, { id: sessionId, request: requestId }, (input) =>
    withApi(Effect.gen(function* () {
      const api = yield* ApiClient
      const params = { params: { id: input.id as Session["id"], requestId: input.request } }
      const h = yield* (name === "approve" ? api.approvals.approveEgress(params) : api.approvals.denyEgress(params))
      yield* Console.log(`${h.requestId} ${h.status}: ${h.method} ${h.host}${h.path}`)
    }))).pipe(Command.withDescription(
      name === "approve" ? "Let the held request through" : "Refuse the held request (the guest gets a 403)",
    ))

const egress = Command.make("egress").pipe(
  Command.withDescription("Decide single requests a session's proxy holds (network.approvals)"),
  Command.withSubcommands([egressList, egressDecide("approve"), egressDecide("deny")]),
)

export const approvals = Command.make("approvals").pipe(
  Command.withDescription("Decide sessions that wait for approval (needs a key with scope `approve`)"),
  Command.withSubcommands([list, decide("approve"), decide("deny"), egress]),
)
