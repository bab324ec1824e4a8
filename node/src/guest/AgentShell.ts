import { Effect, Stream } from "effect"
import { GuestAgentError, plainPath } from "./GuestAgent.ts"
import type { GuestAgent } from "./GuestAgent.ts"
import { GuestShellError, runCapBytes, shellFromExec, withOptions } from "./GuestShell.ts"
import type { GuestShell } from "./GuestShell.ts"
import { OutputCap } from "./OutputCap.ts"

/** A GuestShell over the agent: the same exec options, files and clock as over SSH. */
export const agentShell = (agent: GuestAgent): GuestShell => {
  const shell = shellFromExec((command, options = {}) =>
    Stream.suspend(() =>
      agent.exec(withOptions(command, options), options.stdin === undefined ? {} : { stdin: options.stdin })
    ).pipe(Stream.mapError((e) => new GuestShellError({ message: e.message })))
  )
  return {
    ...shell,
    writeFile: (path, contents, options = {}) =>
      plainPath(path)
        ? agent.writeFile(path, contents, options).pipe(
          Effect.mapError((e) => new GuestShellError({ message: `writing ${path}: ${e.message}` })),
        )
        : shell.writeFile(path, contents, options),
    pty: (size) => agent.pty(size),
  }
}

/** Runs a script through the agent; output is stdout and stderr together, trailing newlines cut. */
export const agentRun = (agent: GuestAgent, script: string, timeoutMs: number) =>
  agent.exec(script).pipe(
    Stream.runFold(() => ({ out: new OutputCap(runCapBytes), code: null as number | null }), (acc, ev) => {
      if (ev._tag === "Exit") acc.code = ev.exitCode
      else acc.out.push(ev.data)
      return acc
    }),
    Effect.map((acc) => ({
      exitCode: acc.code,
      output: `${acc.out.text}${acc.out.end()}`.replace(/\n+$/, ""),
    })),
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () => Effect.fail(new GuestAgentError({ message: `agent: no answer in ${timeoutMs} ms` })),
    }),
  )
