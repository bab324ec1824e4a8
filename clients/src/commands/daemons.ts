import { Console, Data, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { concurrencyPolicies, type DaemonPatch, type DaemonSpec, type DaemonView } from "@paws/core/Daemon"
import { readFileSync } from "node:fs"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

class DaemonFileError extends Data.TaggedError("DaemonFileError")<{ readonly message: string }> {}

const name = Argument.String("name").pipe(Argument.withDescription("daemon name"))

/** A JSON document from a file, or stdin for `-`. */
const readJson = (path: string) =>
  Effect.try({
    try: () => JSON.parse(readFileSync(path === "-" ? 0 : path, "utf8")) as Record<string, unknown>,
    catch: (e) =>
      new DaemonFileError({
        message: `cannot read ${path === "-" ? "stdin" : path} as JSON: ${(e as Error).message} ` +
          "(see `paws daemons create --help` for the format)",
      }),
  })

const printSecrets = (secrets: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const names = Object.keys(secrets)
    if (names.length === 0) return
    yield* Console.error("trigger signing secrets, shown only now (control keeps them encrypted):")
    for (const n of names) yield* Console.log(`${n}\t${secrets[n]}`)
  })

const triggersOf = (d: DaemonView) => d.triggers.map((t) => `${t.kind}:${t.name}`).join(",") || "-"

const create = Command.make("create", {
  file: Argument.String("file").pipe(Argument.withDescription("JSON daemon spec (`-` for stdin)")),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const spec = (yield* readJson(input.file)) as unknown as DaemonSpec
    const saved = yield* api.daemons.create({ payload: spec })
    yield* Console.error(`daemon ${saved.daemon.name} created (triggers: ${triggersOf(saved.daemon)})`)
    yield* printSecrets(saved.secrets)
  }))).pipe(Command.withDescription(
    "Define a daemon from a JSON spec: a session spec (workload, snapshot, resources, timeoutMs, network) plus " +
      '`name`, `triggers` (e.g. [{"kind":"webhook","name":"deploy"}, {"kind":"cron","name":"nightly",' +
      '"schedule":"0 3 * * *"}]), `concurrency` (queue|skip|replace), `enabled`. Webhook/GitHub secrets print once.',
  ))

const list = Command.make("list", {}, () =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    for (const d of yield* api.daemons.list()) {
      yield* Console.log(
        [d.name.padEnd(24), (d.enabled ? "enabled" : "disabled").padEnd(8), d.concurrency.padEnd(7), triggersOf(d)]
          .join("  "),
      )
    }
  }))).pipe(Command.withDescription("List daemons"))

const show = Command.make("show", { name }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    yield* Console.log(JSON.stringify(yield* api.daemons.get({ params: { name: input.name } }), null, 2))
  }))).pipe(Command.withDescription("Show a daemon (never its credential values or secrets)"))

const edit = Command.make("edit", {
  name,
  file: Flag.String("file").pipe(
    Flag.withDescription("JSON with the fields to replace (`-` for stdin)"),
    Flag.optional,
  ),
  enable: Flag.Boolean("enable").pipe(Flag.withDefault(false)),
  disable: Flag.Boolean("disable").pipe(Flag.withDefault(false)),
  concurrency: Flag.Literals("concurrency", concurrencyPolicies).pipe(Flag.optional),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const fromFile = Option.isSome(input.file) ? yield* readJson(input.file.value) : {}
    const patch = {
      ...fromFile,
      ...(input.enable ? { enabled: true } : {}),
      ...(input.disable ? { enabled: false } : {}),
      ...(Option.isSome(input.concurrency) ? { concurrency: input.concurrency.value } : {}),
    } as unknown as DaemonPatch
    if (Object.keys(patch).length === 0) {
      return yield* new DaemonFileError({
        message: "nothing to change: give --file, --enable, --disable or --concurrency",
      })
    }
    const saved = yield* api.daemons.update({ params: { name: input.name }, payload: patch })
    yield* Console.error(`daemon ${saved.daemon.name} updated`)
    yield* printSecrets(saved.secrets)
  }))).pipe(Command.withDescription("Change a daemon: fields from --file replace the stored ones"))

const rm = Command.make("rm", { name }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    yield* api.daemons.delete({ params: { name: input.name } })
    yield* Console.error(`daemon ${input.name} deleted (its sessions stay listed)`)
  }))).pipe(Command.withDescription("Delete a daemon"))

const run = Command.make("run", { name }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const invoked = yield* api.daemons.run({ params: { name: input.name } })
    if (invoked.status === "cancelled") yield* Console.error("skipped: another invocation is running (policy skip)")
    yield* Console.log(invoked.sessionId)
  }))).pipe(Command.withDescription("Run a daemon now (prints the session id; follow it with paws logs -f ID)"))

const logs = Command.make("logs", { name }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const page = yield* api.sessions.list({ query: { daemon: input.name, limit: 1 } })
    const last = page.sessions[0]
    if (last === undefined) return yield* Console.error(`daemon ${input.name} has no invocations yet`)
    yield* Console.error(
      `session ${last.id} (${last.trigger?.kind ?? "?"}:${last.trigger?.name ?? "?"}) ${last.status}`,
    )
    if (last.result === null) return yield* Console.error(`not finished: paws logs -f ${last.id}`)
    process.stdout.write(last.result.stdout)
    process.stderr.write(last.result.stderr)
  }))).pipe(Command.withDescription("Print the output of a daemon's latest invocation"))

const history = Command.make("history", { name }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const { entries } = yield* api.daemonHistory.history({ params: { name: input.name }, query: {} })
    if (entries.length === 0) {
      return yield* Console.error(
        `no LLM history recorded for ${input.name} (a daemon records it with "memory": {"llmHistory": true})`,
      )
    }
    // JSON lines, oldest first: what the next invocation finds at /input/history.jsonl.
    for (const e of entries) yield* Console.log(JSON.stringify(e))
  }))).pipe(Command.withDescription("Print a daemon's recorded LLM history as JSON lines, oldest first"))

export const daemons = Command.make("daemons").pipe(
  Command.withDescription("Daemons: session definitions fired by webhooks, GitHub, cron and watches"),
  Command.withSubcommands([create, list, show, edit, rm, run, logs, history]),
)
