import type { SessionInput } from "@paws/core"
import { Effect } from "effect"
import type { GuestAgent, GuestAgentError } from "./GuestAgent.ts"
import type { GuestShell, GuestShellError } from "./GuestShell.ts"

export const inputDir = "/input"

/** The environment a daemon invocation adds: PAWS_TRIGGER = its trigger kind (never argv). */
export const inputEnv = (input: SessionInput | undefined): Record<string, string> =>
  input?.trigger === undefined ? {} : { PAWS_TRIGGER: input.trigger }

/**
 * A daemon invocation's trigger payload as files under /input (e.g. /input/event.json), readable
 * by the workload, written before it starts. Names were checked on the RPC (plain file names).
 */
export const writeGuestInput = (
  shell: GuestShell,
  agent: GuestAgent | undefined,
  input: SessionInput,
): Effect.Effect<void, GuestShellError | GuestAgentError> =>
  Effect.gen(function* () {
    // Over SSH, writeFile makes the directory itself; the agent writes plain paths only.
    if (agent !== undefined) yield* agent.mkdir(inputDir)
    for (const [name, text] of Object.entries(input.files)) {
      yield* shell.writeFile(`${inputDir}/${name}`, text, { mode: 0o644 })
    }
  })
