import { Console, Effect, Fiber, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { readFileSync } from "node:fs"
import { parseLabels, type SessionEvent, type SessionSpec, type SessionStatus } from "@paws/core"
import { ApiClient, Settings } from "../ApiClient.ts"
import { CliInputError, parseCredential, parseDuration, parseEnvPair } from "../RunArguments.ts"
import { reportQueuePosition } from "../QueueProgress.ts"
import { sessionEvents } from "../SessionEvents.ts"
import { mcpGrantsOf } from "./mcp.ts"
import { agentSnapshot, agentWorkload } from "./runAgent.ts"
import { withApi } from "./shared.ts"

/** The process exit code for a finished session: the workload's own, else a conventional one. */
export const exitCodeFor = (status: SessionStatus, exitCode: number | null): number => {
  if (status === "completed") return exitCode ?? 0
  if (status === "timeout") return 124
  if (status === "cancelled") return 130
  return exitCode !== null && exitCode !== 0 ? exitCode : 1
}

const writeOut = (event: SessionEvent) =>
  Effect.sync(() => {
    if (event._tag === "output") (event.stream === "stdout" ? process.stdout : process.stderr).write(event.data)
  })

export const run = Command.make("run", {
  allow: Flag.String("allow").pipe(
    Flag.withDescription("host the VM may reach (repeatable; *.example.com ok)"),
    Flag.atLeast(0),
  ),
  cred: Flag.String("cred").pipe(
    Flag.withDescription("credential HOST:Header=VALUE; VALUE of the form '$NAME' or env:NAME is read from your env"),
    Flag.atLeast(0),
  ),
  allowWildcardCredential: Flag.Boolean("allow-wildcard-credential").pipe(
    Flag.withDescription("permit a --cred on a *.example.com pattern (sent to every host under it)"),
    Flag.withDefault(false),
  ),
  hold: Flag.String("hold").pipe(
    Flag.withDescription("hold matching requests until a human approves: HOST, HOST/PATH or 'METHOD HOST/PATH'"),
    Flag.atLeast(0),
  ),
  requireApproval: Flag.Boolean("require-approval").pipe(
    Flag.withDescription("wait in awaiting_approval until someone runs `paws approvals approve ID`"),
    Flag.withDefault(false),
  ),
  env: Flag.String("env").pipe(
    Flag.withDescription("environment variable NAME=VALUE for the workload (repeatable)"),
    Flag.atLeast(0),
  ),
  node: Flag.String("node").pipe(
    Flag.withDescription("run only on nodes with this label, KEY=VALUE (repeatable; see PAWS_NODE_LABELS)"),
    Flag.atLeast(0),
  ),
  mcp: Flag.String("mcp").pipe(
    Flag.withDescription("MCP server the session may use: NAME, or NAME:tool1,tool2 for only those tools (repeatable)"),
    Flag.atLeast(0),
  ),
  mcpApprove: Flag.String("mcp-approve").pipe(
    Flag.withDescription("NAME:tool1,tool2: calls of these tools (of an --mcp server) wait for a human (repeatable)"),
    Flag.atLeast(0),
  ),
  timeout: Flag.String("timeout").pipe(Flag.withDescription("e.g. 30s, 5m, 120000 (ms)"), Flag.optional),
  snapshot: Flag.String("snapshot").pipe(Flag.withDescription("image/snapshot name"), Flag.optional),
  agent: Flag.String("agent").pipe(
    Flag.withDescription("run this AI agent non-interactively with the arguments as its prompt (claude-code)"),
    Flag.optional,
  ),
  model: Flag.String("model").pipe(Flag.withDescription("the agent's model (with --agent)"), Flag.optional),
  file: Flag.String("file").pipe(Flag.withAlias("f"), Flag.withDescription("script file to run"), Flag.optional),
  detach: Flag.Boolean("detach").pipe(
    Flag.withAlias("d"),
    Flag.withDescription("print the session id and return"),
    Flag.withDefault(false),
  ),
  script: Argument.String("script").pipe(
    Argument.withDescription("shell script to run (after --)"),
    Argument.variadic(),
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const settings = yield* Settings
    const file = Option.getOrUndefined(input.file)
    const script = file !== undefined
      ? yield* Effect.try({
        try: () => readFileSync(file, "utf8"),
        catch: () => new CliInputError({ message: `cannot read script file ${file}` }),
      })
      : input.script.join(" ")
    if (script.trim() === "") {
      return yield* new CliInputError({
        message: Option.isSome(input.agent)
          ? `nothing to ask: give the prompt, e.g. paws run --agent ${input.agent.value} "Review this repo"`
          : "nothing to run: give a script after -- or a file with -f FILE",
      })
    }
    const credentials: Record<string, { headers: Record<string, string> }> = {}
    for (const c of input.cred) {
      const { host, header, value } = yield* parseCredential(c)
      credentials[host] = { headers: { ...credentials[host]?.headers, [header]: value } }
    }
    const env: Record<string, string> = {}
    for (const pair of input.env) {
      const [k, v] = yield* parseEnvPair(pair)
      env[k] = v
    }
    const parsedSelector = parseLabels(input.node.join(","))
    if ("problem" in parsedSelector) {
      return yield* new CliInputError({ message: `--node: ${parsedSelector.problem} (use KEY=VALUE)` })
    }
    const spec: SessionSpec = {
      workload: Option.isSome(input.agent)
        ? yield* agentWorkload(input.agent.value, script, input.model, input.env.length > 0 ? env : undefined)
        : { type: "script", script, ...(input.env.length > 0 ? { env } : {}) },
      network: {
        allowOut: input.allow,
        ...(input.cred.length > 0 ? { credentials } : {}),
        ...(input.allowWildcardCredential ? { allowWildcardCredential: true } : {}),
        ...(input.hold.length > 0 ? { approvals: input.hold } : {}),
      },
      ...(input.mcp.length + input.mcpApprove.length > 0
        ? { mcp: yield* mcpGrantsOf(input.mcp, input.mcpApprove) }
        : {}),
      ...(input.requireApproval ? { requiresApproval: true } : {}),
      ...(Option.isSome(input.timeout) ? { timeoutMs: yield* parseDuration(input.timeout.value) } : {}),
      ...(Option.isSome(input.snapshot)
        ? { snapshot: input.snapshot.value }
        : Option.isSome(input.agent)
        ? { snapshot: agentSnapshot }
        : {}),
    }
    const withSelector: SessionSpec = input.node.length === 0 ? spec : { ...spec, nodeSelector: parsedSelector.labels }
    const accepted = yield* api.sessions.create({ payload: withSelector, headers: {} })
    for (const warning of accepted.warnings ?? []) yield* Console.error(`warning: ${warning}`)
    if (input.detach) return yield* Console.log(accepted.sessionId)
    yield* Console.error(`session ${accepted.sessionId} ${accepted.status}`)
    // Over capacity, a session waits in the queue: say where it stands while it does.
    const queueReport = yield* reportQueuePosition(
      accepted.sessionId,
      api.sessions.get({ params: { id: accepted.sessionId } }).pipe(Effect.option),
    ).pipe(Effect.forkChild)
    let final: { status: SessionStatus; exitCode: number | null } = { status: accepted.status, exitCode: null }
    yield* sessionEvents(settings, accepted.sessionId).pipe(
      Stream.runForEach(({ event }) =>
        Effect.gen(function* () {
          yield* writeOut(event)
          if (event._tag === "result") final = { ...final, exitCode: event.result.exitCode }
          if (event._tag === "status") {
            final = { ...final, status: event.status }
            if (event.status !== "running" && event.status !== "completed") {
              yield* Console.error(
                `session ${accepted.sessionId} ${event.status}${event.reason ? `: ${event.reason}` : ""}`,
              )
            }
          }
        })
      ),
      // Ctrl-C interrupts this fiber: cancel the session so the VM stops too.
      Effect.onInterrupt(() =>
        api.sessions.cancel({ params: { id: accepted.sessionId } }).pipe(
          Effect.andThen(Console.error(`cancelled session ${accepted.sessionId}`)),
          Effect.ignore,
        )
      ),
    )
    yield* Fiber.interrupt(queueReport)
    const session = yield* api.sessions.get({ params: { id: accepted.sessionId } })
    const code = exitCodeFor(session.status, session.result?.exitCode ?? final.exitCode)
    if (session.result?.error) yield* Console.error(`error: ${session.result.error}`)
    process.exitCode = code
  }))).pipe(Command.withDescription("Run a script in a fresh microVM, stream its output, exit with its exit code"))
