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
    const waiting = yield* api.approvals.list()
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

export const approvals = Command.make("approvals").pipe(
  Command.withDescription("Decide sessions that wait for approval (needs a key with scope `approve`)"),
  Command.withSubcommands([list, decide("approve"), decide("deny")]),
)
