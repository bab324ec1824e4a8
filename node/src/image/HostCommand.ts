import { Data, Effect } from "effect"
import { spawn } from "node:child_process"

/** A host command that could not start or exited non-zero; stderr's tail says why. */
export class HostCommandError extends Data.TaggedError("HostCommandError")<{
  readonly command: string
  readonly exitCode: number | null
  readonly stderr: string
}> {
  override get message() {
    return `${this.command} failed (exit ${this.exitCode}): ${this.stderr.slice(-2000)}`
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

/** Runs a command to completion (argv, never a shell); interruption kills it. */
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
    if (options.input !== undefined) child.stdin!.end(options.input)
    return Effect.sync(() => {
      if (child.exitCode === null) child.kill("SIGKILL")
    })
  })
