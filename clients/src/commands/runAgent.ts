import { Effect, Option } from "effect"
import { agentNames } from "@paws/core/SessionSpec"
import type { AgentWorkload } from "@paws/core/SessionSpec"
import { CliInputError } from "../RunArguments.ts"

/** The image `paws run --agent` uses unless --snapshot says otherwise. */
export const agentSnapshot = "claude-agent"

/** `paws run --agent NAME [--model M] PROMPT…` → the agent workload, or a message naming the fix. */
export const agentWorkload = (
  agent: string,
  prompt: string,
  model: Option.Option<string>,
  env: Record<string, string> | undefined,
): Effect.Effect<AgentWorkload, CliInputError> =>
  (agentNames as ReadonlyArray<string>).includes(agent) && agent !== "custom"
    ? Effect.succeed({
      type: "agent",
      agent: agent as AgentWorkload["agent"] & string,
      prompt,
      ...(Option.isSome(model) ? { model: model.value } : {}),
      ...(env === undefined ? {} : { env }),
    })
    : Effect.fail(
      new CliInputError({
        message: `--agent "${agent}" is not a known agent; use one of: ${
          agentNames.filter((a) => a !== "custom").join(", ")
        } (a custom agent goes through the API: {"agent":"custom","command":[…]})`,
      }),
    )
