import { Context, Data, Effect, Layer, Option } from "effect"
import { spawn } from "node:child_process"
import { NodeConfig } from "./NodeConfig.ts"

/** A host command that could not start or exited non-zero; stderr's tail says why. */
export class HostCommandError extends Data.TaggedError("HostCommandError")<{
  readonly command: string
  readonly exitCode: number | null
  readonly stderr: string
}> {
  override get message() {
    return `${this.command} failed (exit ${this.exitCode}): ${this.stderr.trim().slice(-2000)}`
  }
}

export interface HostCommandOptions {
  readonly cwd?: string
  readonly env?: Record<string, string>
  readonly input?: string | Uint8Array
}

export interface HostCommandResult {
  readonly stdout: string
  readonly stderr: string
}

/**
 * The node's one way to run a host program (`ip`, `nft`, `qemu-img`, `gcc`, `apt-get` …): argv,
 * never a shell; stdout and stderr collected; a non-zero exit is a HostCommandError; interruption
 * kills it.
 */
export const runHostCommand = (
  command: string,
  args: ReadonlyArray<string>,
  options: HostCommandOptions = {},
): Effect.Effect<HostCommandResult, HostCommandError> =>
  Effect.callback<HostCommandResult, HostCommandError>((resume) => {
    const label = [command, ...args].join(" ").slice(0, 300)
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ? { ...process.env, ...options.env } : process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout!.on("data", (b: Buffer) => out.push(b))
    child.stderr!.on("data", (b: Buffer) => err.push(b))
    child.on(
      "error",
      (e) => resume(Effect.fail(new HostCommandError({ command: label, exitCode: null, stderr: e.message }))),
    )
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString("utf8")
      const stderr = Buffer.concat(err).toString("utf8")
      resume(
        code === 0
          ? Effect.succeed({ stdout, stderr })
          : Effect.fail(new HostCommandError({ command: label, exitCode: code, stderr })),
      )
    })
    if (options.input !== undefined) {
      // A command that exits without reading its stdin must not crash us with EPIPE.
      child.stdin!.on("error", () => {})
      child.stdin!.end(options.input)
    }
    return Effect.sync(() => {
      if (child.exitCode === null) child.kill("SIGKILL")
    })
  })

/** argv[0] with the rest, stdout only: the form `ip`/`nft` callers want. */
export const runArgv = (argv: ReadonlyArray<string>, stdin?: string): Effect.Effect<string, HostCommandError> =>
  runHostCommand(argv[0]!, argv.slice(1), stdin === undefined ? {} : { input: stdin }).pipe(
    Effect.map((r) => r.stdout),
  )

/** Runs `ip`/`nft`/… in the node's network namespace (`PAWS_NODE_NETNS`), or the current one. */
export interface HostCommandShape {
  readonly netns: Option.Option<string>
  /** argv prefix that enters the netns (`ip netns exec NS`), empty without one; for long-lived children too. */
  readonly prefix: ReadonlyArray<string>
  readonly run: (argv: ReadonlyArray<string>, stdin?: string) => Effect.Effect<string, HostCommandError>
}

export class HostCommand extends Context.Service<HostCommand, HostCommandShape>()("paws/node/HostCommand") {
  static readonly make = (netns: Option.Option<string>): HostCommandShape => {
    const prefix = Option.match(netns, { onNone: () => [], onSome: (ns) => ["ip", "netns", "exec", ns] })
    // Short commands (`ip`, `nft`, on every session's start) only need the network namespace:
    // nsenter is one exec, where `ip netns exec` is two plus a mount namespace (half the time).
    // (A name that is not a plain file name keeps `ip netns exec`, which refuses it.)
    const enter = Option.match(netns, {
      onNone: () => [],
      onSome: (ns) => /^(?!\.\.?$)[\w.-]+$/.test(ns) ? ["nsenter", `--net=/run/netns/${ns}`] : prefix,
    })
    return HostCommand.of({ netns, prefix, run: (argv, stdin) => runArgv([...enter, ...argv], stdin) })
  }
  static readonly layer = Layer.effect(HostCommand, NodeConfig.useSync((c) => HostCommand.make(c.netns)))
}
