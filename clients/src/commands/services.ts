import { Effect, Layer } from "effect"
import { Command } from "effect/cli"

// Services are imported lazily so that client commands (`paws run`, `paws logs`) start fast.

export const control = Command.make("control", {}, () =>
  Effect.gen(function* () {
    const { ControlMain } = yield* Effect.promise(() => import("@paws/control"))
    return yield* Layer.launch(ControlMain)
  })).pipe(Command.withDescription("Run the control plane (HTTP API, queue, vault, scheduler); config from PAWS_* env"))

export const node = Command.make("node", {}, () =>
  Effect.gen(function* () {
    if (process.getuid?.() !== 0) {
      process.exitCode = 1
      return yield* Effect.sync(() =>
        console.error(
          "paws node must run as root: it creates TAP devices, nftables tables and VMs. Try: sudo paws node",
        )
      )
    }
    const { NodeApp } = yield* Effect.promise(() => import("@paws/node"))
    return yield* Layer.launch(NodeApp)
  })).pipe(Command.withDescription("Run a node (microVMs, network, proxies); needs root"))
