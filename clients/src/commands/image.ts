import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { readFileSync } from "node:fs"
import type { SnapshotRequest, SnapshotView } from "@paws/core/Snapshot"
import { ApiClient } from "../ApiClient.ts"
import { CliInputError, parseCredential, parseDuration } from "../RunArguments.ts"
import { imageBuildCommands } from "./imageBuild.ts"
import { withApi } from "./shared.ts"

const checkName = (name: string) =>
  /^[a-z0-9][a-z0-9._-]{0,63}$/.test(name) ? Effect.void : Effect.fail(
    new CliInputError({
      message: `snapshot name "${name}" must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit ` +
        "(e.g. python-tools)",
    }),
  )

const json = Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false))

export const formatSnapshotRow = (s: SnapshotView): string =>
  [
    s.name.padEnd(20),
    s.node.padEnd(16),
    s.status.padEnd(9),
    s.manifest === undefined
      ? (s.phase === undefined ? "" : `phase ${s.phase}`)
      : `${s.manifest.image.name}@${
        s.manifest.image.hash.slice(0, 12)
      }  ${s.manifest.memoryMB} MiB  ${s.manifest.vcpus} vCPU  ${s.manifest.createdAt}`,
    s.error === undefined ? "" : ` ${s.error.split("\n")[0]}`,
    // Built by a project (absent: the instance's own, shared by every project).
    s.project === undefined ? "" : `project=${s.project}`,
  ].join("  ").trimEnd()

const snapshot = Command.make("snapshot", {
  base: Flag.String("base").pipe(Flag.withDescription("image to boot (default: default)"), Flag.optional),
  setup: Flag.String("setup").pipe(Flag.withDescription("setup script file, run as root in the guest"), Flag.optional),
  allow: Flag.String("allow").pipe(
    Flag.withDescription("host the setup script may reach (repeatable; *.example.com ok)"),
    Flag.atLeast(0),
  ),
  cred: Flag.String("cred").pipe(
    Flag.withDescription("credential HOST:Header=VALUE for setup; VALUE '$NAME' or env:NAME is read from your env"),
    Flag.atLeast(0),
  ),
  memory: Flag.Int("memory").pipe(
    Flag.withDescription("guest memory in MiB (sessions must ask the same)"),
    Flag.optional,
  ),
  vcpus: Flag.Int("vcpus").pipe(Flag.withDescription("vCPUs (sessions must ask the same)"), Flag.optional),
  timeout: Flag.String("timeout").pipe(
    Flag.withDescription("the whole build must finish within this, e.g. 10m (default: the largest session timeout)"),
    Flag.optional,
  ),
  node: Flag.String("node").pipe(Flag.withDescription("build on this node (default: the least busy)"), Flag.optional),
  detach: Flag.Boolean("detach").pipe(
    Flag.withAlias("d"),
    Flag.withDescription("start the build and return"),
    Flag.withDefault(false),
  ),
  name: Argument.String("name").pipe(Argument.withDescription("snapshot name (sessions use it as --snapshot NAME)")),
  script: Argument.String("script").pipe(
    Argument.withDescription("setup script (after --), instead of --setup FILE"),
    Argument.variadic(),
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    yield* checkName(input.name)
    const file = Option.getOrUndefined(input.setup)
    if (file !== undefined && input.script.length > 0) {
      return yield* new CliInputError({
        message: "give the setup script either with --setup FILE or after --, not both",
      })
    }
    const setup = file !== undefined
      ? yield* Effect.try({
        try: () => readFileSync(file, "utf8"),
        catch: () => new CliInputError({ message: `cannot read setup file ${file}` }),
      })
      : input.script.join(" ")
    if ((input.allow.length > 0 || input.cred.length > 0) && setup.trim() === "") {
      return yield* new CliInputError({
        message: "--allow/--cred apply to the setup script: give one with --setup FILE or after --",
      })
    }
    const credentials: Record<string, { headers: Record<string, string> }> = {}
    for (const c of input.cred) {
      const { host, header, value } = yield* parseCredential(c)
      credentials[host] = { headers: { ...credentials[host]?.headers, [header]: value } }
    }
    const request: SnapshotRequest = {
      name: input.name,
      ...(Option.isSome(input.base) ? { base: input.base.value } : {}),
      ...(setup.trim() === "" ? {} : { setup }),
      ...(input.allow.length + input.cred.length > 0
        ? { network: { allowOut: input.allow, ...(input.cred.length > 0 ? { credentials } : {}) } }
        : {}),
      ...(Option.isSome(input.memory) ? { memoryMB: input.memory.value } : {}),
      ...(Option.isSome(input.vcpus) ? { vcpus: input.vcpus.value } : {}),
      ...(Option.isSome(input.node) ? { node: input.node.value } : {}),
      ...(Option.isSome(input.timeout) ? { timeoutMs: yield* parseDuration(input.timeout.value) } : {}),
    }
    const started = Date.now()
    const accepted = yield* api.snapshots.create({ payload: request })
    yield* Console.error(`snapshot ${accepted.name}: building on node ${accepted.node}`)
    if (input.detach) return yield* Console.log(accepted.name)
    // Each phase once, with the node's time since the build started (the manifest has the rest).
    const shown = new Set<string>()
    const show = (phase: string, ms: number) =>
      shown.has(phase) ? Effect.void : Effect.andThen(
        Effect.sync(() => shown.add(phase)),
        Console.error(`snapshot ${accepted.name}: ${phase} (${(ms / 1000).toFixed(1)} s)`),
      )
    while (true) {
      const s = yield* api.snapshots.get({ params: { name: accepted.name } })
      for (const p of s.phases ?? []) yield* show(p.phase, p.ms)
      for (const host of s.refusedHosts ?? []) {
        if (shown.has(`refused ${host}`)) continue
        shown.add(`refused ${host}`)
        yield* Console.error(`snapshot ${s.name}: the setup script was refused ${host} (not in --allow)`)
      }
      if (s.status === "building" && s.phases === undefined) yield* show(s.phase ?? "queued", Date.now() - started)
      if (s.status === "ready" && s.manifest !== undefined) {
        const done = Object.entries(s.manifest.buildMs).filter(([p]) => p !== "total").sort((a, b) => a[1] - b[1])
        for (const [phase, ms] of done) yield* show(phase, ms)
        yield* show("ready", s.manifest.buildMs["total"] ?? Date.now() - started)
      }
      if (s.status === "ready") {
        const m = s.manifest!
        yield* Console.error(
          `snapshot ${s.name} ready on ${s.node}: image ${m.image.name}@${m.image.hash.slice(0, 12)}, ` +
            `${m.memoryMB} MiB, ${m.vcpus} vCPU; run sessions from it with: paws run --snapshot ${s.name} -- …`,
        )
        return yield* Console.log(JSON.stringify(s, null, 2))
      }
      if (s.status === "failed" || s.status === "stale") {
        const refused = s.refusedHosts ?? []
        yield* Console.error(
          `snapshot ${s.name} ${s.status}: ${s.error ?? "no reason given"}\n` +
            "fix the setup script (it must exit 0; hosts it reaches need --allow) and run this command again" +
            (refused.length === 0 ? "" : `; it was refused: ${refused.map((h) => `--allow ${h}`).join(" ")}?`),
        )
        process.exitCode = 1
        return
      }
      yield* Effect.sleep(250)
    }
  }))).pipe(Command.withDescription(
    "Build a snapshot: boot an image, run a setup script (network limited to --allow hosts), save it",
  ))

const snapshots = Command.make("snapshots", { json }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const list = yield* api.snapshots.list()
    if (input.json) return yield* Console.log(JSON.stringify(list, null, 2))
    if (list.length === 0) return yield* Console.log("no snapshots (build one: paws image snapshot NAME -- SCRIPT)")
    for (const s of list) yield* Console.log(formatSnapshotRow(s))
  }))).pipe(Command.withDescription("List snapshots on every node, and builds running or failed"))

const rm = Command.make("rm", {
  name: Argument.String("name").pipe(Argument.withDescription("snapshot name")),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    yield* checkName(input.name)
    yield* api.snapshots.delete({ params: { name: input.name } })
    yield* Console.log(`snapshot ${input.name} removed`)
  }))).pipe(Command.withDescription("Remove a snapshot from every node (running sessions keep theirs)"))

export const image = Command.make("image").pipe(
  Command.withDescription("Guest images (build, list) and snapshots of them (snapshot, snapshots, rm)"),
  Command.withSubcommands([...imageBuildCommands, snapshot, snapshots, rm]),
)
