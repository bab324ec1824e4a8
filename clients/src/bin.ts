#!/usr/bin/env node
/** `paws`: the one binary. Client commands talk to the control API; `control`, `node` and `up` run services. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { controlSettings } from "@paws/control/ControlConfig"
import { nodeSettings } from "@paws/node/NodeConfig"
import { settingsHelp } from "@paws/core/Settings"
import { clientSettings } from "./ClientConfig.ts"
import { daemons } from "./commands/daemons.ts"
import { audit } from "./commands/audit.ts"
import { approvals } from "./commands/approvals.ts"
import { image } from "./commands/image.ts"
import { keys } from "./commands/keys.ts"
import { mcp } from "./commands/mcp.ts"
import { logs } from "./commands/logs.ts"
import { nodes } from "./commands/nodes.ts"
import { projects } from "./commands/projects.ts"
import { root } from "./commands/root.ts"
import { run } from "./commands/run.ts"
import { control, node } from "./commands/services.ts"
import { up } from "./commands/up.ts"
import { sessions } from "./commands/sessions.ts"
import { cp, exec } from "./commands/exec.ts"
import { pause, resume } from "./commands/pause.ts"
import { ports } from "./commands/ports.ts"
import { shell } from "./commands/shell.ts"
import { top } from "./commands/top.ts"

export const paws = root.pipe(
  Command.withDescription(
    [
      "paws runs AI agents in ephemeral microVMs; credentials stay on the host and are injected by a per-VM TLS proxy.",
      "",
      settingsHelp("Client configuration (environment)", clientSettings),
      "",
      settingsHelp("Control-plane configuration (environment, for `paws up` / `paws control`)", controlSettings),
      "",
      settingsHelp("Node configuration (environment, for `paws up` as root / `paws node`)", nodeSettings),
    ].join("\n"),
  ),
  Command.withSubcommands([
    run,
    logs,
    sessions,
    exec,
    cp,
    pause,
    resume,
    ports,
    shell,
    daemons,
    nodes,
    image,
    keys,
    projects,
    approvals,
    mcp,
    audit,
    top,
    up,
    control,
    node,
  ]),
)

/** Runs the CLI on `process.argv` (the `paws` launcher, clients/bin/paws.js, calls this). */
export const main = () =>
  paws.pipe(
    Command.run({ version: "0.1.0" }),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain,
  )

if (import.meta.main) main()
