/**
 * `npm run image:snapshot [-- NAME [SETUP_SCRIPT_FILE [IMAGE]]]` (root): boots IMAGE (default
 * "default"), runs the setup script, pauses and saves snapshot NAME, printing each phase.
 * Uses the node's own config (PAWS_DATA_DIR, PAWS_NODE_NETNS, PAWS_NODE_POOL, PAWS_SNAPSHOT_DIR).
 * Setup runs with the guest isolated (no network); allowlisted setup network is still to come.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { newSessionId } from "@paws/core"
import { NodeServices } from "../main.ts"
import { Firewall } from "../network/Firewall.ts"
import { NetworkSlot } from "../network/NetworkSlot.ts"
import { SnapshotBuilder } from "./SnapshotBuilder.ts"

const [name = "default", setupFile, image = "default"] = process.argv.slice(2)

const program = Effect.scoped(Effect.gen(function* () {
  const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
  yield* (yield* Firewall).isolate(slot)
  const manifest = yield* (yield* SnapshotBuilder).build({
    name,
    image,
    ...(setupFile === undefined ? {} : { setup: readFileSync(setupFile, "utf8") }),
    net: {
      tap: slot.tap,
      guestMac: slot.guestMac,
      guestIp: slot.guestIp,
      guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
      gateway: slot.hostIp,
      dns: slot.hostIp,
    },
    onProgress: (phase, ms) => console.error(`snapshot ${name}: ${phase} (${ms} ms)`),
  })
  yield* Console.log(JSON.stringify(manifest, null, 2))
}))

if (import.meta.main) {
  if (process.getuid?.() !== 0) {
    console.error("building a snapshot boots a VM on a TAP device: run as root")
    process.exit(1)
  }
  program.pipe(
    Effect.provide(SnapshotBuilder.layerNoDeps.pipe(Layer.provideMerge(NodeServices))),
    NodeRuntime.runMain,
  )
}
