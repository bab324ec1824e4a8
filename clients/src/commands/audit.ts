import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import type { AuditEntry, SessionId } from "@paws/core"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

const filter = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const flags = {
  project: filter("project", "only this project's rows (instance admin; a project's key sees only its own)"),
  actor: filter("actor", "only rows by this actor (key:<id>, node:<id>, system)"),
  session: filter("session", "only rows about this session id"),
  daemon: filter("daemon", "only rows about this daemon"),
  action: filter("action", "only this action (e.g. egress), or a prefix ending in * (api.*)"),
  since: filter("since", "from this time on (ISO 8601, inclusive)"),
  until: filter("until", "before this time (ISO 8601, exclusive)"),
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("one JSON object per line (an export)"),
    Flag.withDefault(false),
  ),
  follow: Flag.Boolean("follow").pipe(
    Flag.withAlias("f"),
    Flag.withDescription("keep printing new rows as they are written (Ctrl-C to stop)"),
    Flag.withDefault(false),
  ),
}

/** One row for people: time, actor, action, target, result, and the session when there is one. */
export const formatAuditRow = (e: AuditEntry): string =>
  [e.time, e.actor.padEnd(18), e.action.padEnd(20), e.result.padEnd(14), e.target].join("  ") +
  (e.session !== null && e.session !== e.target ? `  session=${e.session}` : "") +
  (e.project === "default" ? "" : `  project=${e.project}`)

const followIntervalMs = 1000

const list = (
  input:
    & {
      readonly [K in "project" | "actor" | "session" | "daemon" | "action" | "since" | "until"]: Option.Option<string>
    }
    & { readonly json: boolean; readonly follow: boolean },
) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const query = {
      ...Option.match(input.project, { onNone: () => ({}), onSome: (project) => ({ project }) }),
      ...Option.match(input.actor, { onNone: () => ({}), onSome: (actor) => ({ actor }) }),
      ...Option.match(input.session, { onNone: () => ({}), onSome: (session) => ({ session: session as SessionId }) }),
      ...Option.match(input.daemon, { onNone: () => ({}), onSome: (daemon) => ({ daemon }) }),
      ...Option.match(input.action, { onNone: () => ({}), onSome: (action) => ({ action }) }),
      ...Option.match(input.since, { onNone: () => ({}), onSome: (since) => ({ since }) }),
      ...Option.match(input.until, { onNone: () => ({}), onSome: (until) => ({ until }) }),
    }
    let cursor: string | undefined
    while (true) {
      const page = yield* api.audit.list({
        query: { ...query, limit: 1000, ...(cursor === undefined ? {} : { cursor }) },
      })
      for (const e of page.entries) yield* Console.log(input.json ? JSON.stringify(e) : formatAuditRow(e))
      cursor = page.nextCursor
      if (page.more) continue
      if (!input.follow) return
      yield* Effect.sleep(followIntervalMs)
    }
  }))

const verify = Command.make("verify", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const check = yield* api.audit.verify()
    const from = check.from === null
      ? "from the first row"
      : `from the checkpoint through row ${check.from.throughId} (${check.from.at})`
    if (check.firstBroken === null) {
      const head = check.head === null ? "empty" : `head row ${check.head.id} ${check.head.hash}`
      return yield* Console.log(`audit chain ok: ${check.checked} rows checked ${from}; ${head}`)
    }
    yield* Console.error(
      `audit chain BROKEN at ${check.firstBroken.kind} ${check.firstBroken.id}: ${check.firstBroken.reason} ` +
        `(${check.checked} rows before it fit the chain, checked ${from})`,
    )
    process.exitCode = 1
  }))).pipe(Command.withDescription("Re-check the audit log's hash chain; exit 1 naming the first broken row"))

export const audit = Command.make("audit", flags, list).pipe(
  Command.withDescription(
    "Print the audit log, oldest first (admin key): every mutating API call, session status change, key and " +
      "node-token change and proxy egress decision. --json exports JSON lines; --follow tails new rows.",
  ),
  Command.withSubcommands([verify]),
)
