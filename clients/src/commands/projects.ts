import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Project } from "@paws/core/Project"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const projectId = Argument.String("id").pipe(Argument.withDescription("project id (a-z 0-9 -)"))
const optionalInt = (name: string, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(description), Flag.optional)
const limitFlags = {
  maxSessions: optionalInt("max-sessions", "max unfinished sessions of the project (-1 removes the limit)"),
  maxMinutes: optionalInt("max-minutes-per-day", "max session-minutes per UTC day (-1 removes the limit)"),
  webhook: Flag.String("approval-webhook").pipe(
    Flag.withDescription('URL POSTed when a session waits for approval ("" removes it)'),
    Flag.optional,
  ),
}

/** -1 on the command line means "no limit" (null in the API); absent means "unchanged". */
const limitValue = (o: Option.Option<number>) =>
  Option.match(o, { onNone: () => ({}), onSome: (n) => ({ value: n === -1 ? null : n }) })

const limitsOf = (input: { maxSessions: Option.Option<number>; maxMinutes: Option.Option<number> }) => {
  const sessions = limitValue(input.maxSessions)
  const minutes = limitValue(input.maxMinutes)
  return {
    ...("value" in sessions ? { maxConcurrentSessions: sessions.value } : {}),
    ...("value" in minutes ? { maxSessionMinutesPerDay: minutes.value } : {}),
  }
}

const webhookOf = (o: Option.Option<string>) =>
  Option.match(o, { onNone: () => ({}), onSome: (url) => ({ approvalWebhook: url === "" ? null : url }) })

const show = (p: Project) =>
  [
    p.id.padEnd(20),
    `sessions ${p.limits.maxConcurrentSessions ?? "∞"}`,
    `minutes/day ${p.limits.maxSessionMinutesPerDay ?? "∞"}`,
    p.approvalWebhook === null ? "" : "webhook",
    p.description,
  ].join("  ")

const create = Command.make("create", {
  id: projectId,
  description: Flag.String("description").pipe(Flag.withDescription("what the project is for"), Flag.optional),
  ...limitFlags,
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const p = yield* api.projects.create({
      payload: {
        id: input.id,
        limits: limitsOf(input),
        ...webhookOf(input.webhook),
        ...Option.match(input.description, { onNone: () => ({}), onSome: (description) => ({ description }) }),
      },
    })
    yield* Console.log(show(p))
    yield* Console.error(`create its keys with: paws keys create --project ${p.id} --name … --scope …`)
  }))).pipe(Command.withDescription("Create a project (instance admin)"))

const list = Command.make("list", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    for (const p of yield* api.projects.list()) yield* Console.log(show(p))
  }))).pipe(Command.withDescription("List projects (instance admin)"))

const update = Command.make("update", { id: projectId, ...limitFlags }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const p = yield* api.projects.update({
      params: { id: input.id },
      payload: { limits: limitsOf(input), ...webhookOf(input.webhook) },
    })
    yield* Console.log(show(p))
  }))).pipe(Command.withDescription("Change a project's quotas or approval webhook (instance admin)"))

const remove = Command.make("delete", { id: projectId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    yield* api.projects.delete({ params: { id: input.id } })
    yield* Console.log(`${input.id} deleted; its keys are revoked`)
  }))).pipe(Command.withDescription("Delete a project with no unfinished sessions (instance admin)"))

export const projects = Command.make("projects").pipe(
  Command.withDescription("Manage projects, the tenancy boundary of keys and sessions"),
  Command.withSubcommands([create, list, update, remove]),
)
