import { Context, Data, Effect, Layer, Option } from "effect"
import { spawn } from "node:child_process"
import { NodeConfig } from "../NodeConfig.ts"

export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly argv: ReadonlyArray<string>
  readonly code: number | null
  readonly stderr: string
}> {
  override get message(): string {
    return `${this.argv.join(" ")} exited ${this.code}: ${this.stderr.trim()}`
  }
}

/** Runs `ip`/`nft`/… in the node's network namespace (config `PAWS_NODE_NETNS`), or the current one. */
export interface HostCommandShape {
  readonly netns: Option.Option<string>
  /** argv prefix that enters the netns (`ip netns exec NS`), empty without one; for long-lived children too. */
  readonly prefix: ReadonlyArray<string>
  readonly run: (argv: ReadonlyArray<string>, stdin?: string) => Effect.Effect<string, CommandFailed>
}

export const runCommand = (argv: ReadonlyArray<string>, stdin?: string): Effect.Effect<string, CommandFailed> =>
  Effect.callback<string, CommandFailed>((resume) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout!.on("data", (b: Buffer) => out.push(b))
    child.stderr!.on("data", (b: Buffer) => err.push(b))
    child.on("error", (e) => resume(Effect.fail(new CommandFailed({ argv, code: null, stderr: String(e) }))))
    child.on("close", (code) => {
      const stderr = Buffer.concat(err).toString()
      if (code === 0) resume(Effect.succeed(Buffer.concat(out).toString()))
      else resume(Effect.fail(new CommandFailed({ argv, code, stderr })))
    })
    if (child.stdin) {
      // A command that exits without reading its stdin must not crash us with EPIPE.
      child.stdin.on("error", () => {})
      child.stdin.end(stdin)
    }
  })

export class HostCommand extends Context.Service<HostCommand, HostCommandShape>()("paws/node/HostCommand") {
  static readonly make = (netns: Option.Option<string>): HostCommandShape => {
    const prefix = Option.match(netns, { onNone: () => [], onSome: (ns) => ["ip", "netns", "exec", ns] })
    return HostCommand.of({
      netns,
      prefix,
      run: (argv, stdin) => runCommand([...prefix, ...argv], stdin),
    })
  }
  static readonly layer = Layer.effect(HostCommand, NodeConfig.useSync((c) => HostCommand.make(c.netns)))
}
