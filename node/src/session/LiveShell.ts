import { Effect, Stream } from "effect"
import type { GuestShell, GuestShellError } from "../guest/GuestShell.ts"

/**
 * The shell that live exec and files use in a restored VM. The agent's channel takes one request at a
 * time and the workload's script holds it to its end, so while the workload runs they go over SSH (the
 * guest's dropbear; `ssh` dials once, on first need). PTY shells stay on the agent, which serves them
 * beside a running exec.
 */
export const liveShell = (
  agent: GuestShell,
  workloadRunning: () => boolean,
  ssh: Effect.Effect<GuestShell, GuestShellError>,
): GuestShell => {
  const pick = Effect.suspend(() => workloadRunning() ? ssh : Effect.succeed(agent))
  return {
    exec: (command, options) => Stream.unwrap(Effect.map(pick, (s) => s.exec(command, options))),
    run: (command, options) => Effect.flatMap(pick, (s) => s.run(command, options)),
    writeFile: (path, contents, options) => Effect.flatMap(pick, (s) => s.writeFile(path, contents, options)),
    readFile: (path, maxBytes) => Effect.flatMap(pick, (s) => s.readFile(path, maxBytes)),
    setClock: (epochMs) => agent.setClock(epochMs),
    ...(agent.pty === undefined ? {} : { pty: agent.pty }),
  }
}
