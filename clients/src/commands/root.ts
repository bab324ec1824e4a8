import { Command, Flag } from "effect/cli"

/** The `paws` root command: its flags are shared by every subcommand. */
export const root = Command.make("paws").pipe(
  Command.withSharedFlags({
    url: Flag.String("url").pipe(
      Flag.withDescription("control-plane URL (else PAWS_URL, the config file, or http://127.0.0.1:4000)"),
      Flag.optional,
    ),
  }),
  Command.withDescription(
    "paws runs AI agents in ephemeral microVMs; credentials stay on the host and are injected by a per-VM TLS proxy.",
  ),
)
