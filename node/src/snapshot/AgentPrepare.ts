import { Effect } from "effect"
import { agentRun } from "./GuestAgent.ts"
import type { GuestAgent } from "./GuestAgent.ts"

/** Workload scripts up to this size travel with the prepare command over the agent; larger ones over SSH. */
export const agentPrepareMaxBytes = 64 * 1024

/**
 * Runs the session's prepare command (the one SessionRunner would send over SSH, with the workload
 * script on its stdin) through a restored guest's agent instead, so it overlaps the SSH handshake
 * rather than following it.
 */
export const prepareViaAgent = (
  agent: GuestAgent,
  prepareCommand: string,
  script: string,
): Effect.Effect<void, Error> =>
  agentRun(
    agent,
    `printf %s '${Buffer.from(script).toString("base64")}' | base64 -d | { ${prepareCommand}; }`,
    30_000,
  ).pipe(
    Effect.mapError((e) => new Error(e.message)),
    Effect.flatMap((r) =>
      r.exitCode === 0 ? Effect.void : Effect.fail(new Error(`preparing the guest failed: ${r.output.trim()}`))
    ),
  )
