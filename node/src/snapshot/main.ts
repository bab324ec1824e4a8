/**
 * `npm run image:snapshot [-- NAME [SETUP_SCRIPT_FILE [IMAGE]] [--allow HOST]…]` (root): boots IMAGE
 * (default "default"), runs the setup script with the network limited to the --allow hosts through
 * a proxy of its own (as `paws image snapshot` does through a node), pauses and saves snapshot NAME,
 * printing each phase. Credentials are not taken here (argv is visible to every local user): use
 * `paws image snapshot --cred`. Uses the node's own config (PAWS_DATA_DIR, PAWS_NODE_NETNS,
 * PAWS_NODE_POOL, PAWS_SNAPSHOT_DIR).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Option, Stream } from "effect"
import { readFileSync } from "node:fs"
import { NodeServices } from "../main.ts"
import { NodeSnapshots } from "./NodeSnapshots.ts"
import { SnapshotStore } from "./SnapshotStore.ts"
import { manifestSummary } from "./NodeSnapshots.ts"

const args = process.argv.slice(2)
const allowOut = args.flatMap((a, i) => (args[i - 1] === "--allow" ? [a] : []))
const positional = args.filter((a, i) => a !== "--allow" && args[i - 1] !== "--allow")
const [name = "default", setupFile, image = "default"] = positional

const program = Effect.gen(function* () {
  yield* (yield* NodeSnapshots).build({
    name,
    base: image,
    ...(setupFile === undefined ? {} : { setup: readFileSync(setupFile, "utf8") }),
    network: { allowOut, credentials: {} },
    memoryMB: 256,
    vcpus: 1,
    timeoutMs: 60 * 60_000,
  }).pipe(
    Stream.runForEach((e) =>
      e._tag === "progress" ? Console.error(`snapshot ${name}: ${e.phase} (${e.ms} ms)`) : Effect.void
    ),
  )
  const built = yield* Effect.orDie((yield* SnapshotStore).find(name))
  yield* Console.log(JSON.stringify(Option.getOrNull(Option.map(built, (s) => manifestSummary(s.manifest))), null, 2))
})

if (import.meta.main) {
  if (process.getuid?.() !== 0) {
    console.error("building a snapshot boots a VM on a TAP device: run as root")
    process.exit(1)
  }
  program.pipe(Effect.provide(NodeServices), NodeRuntime.runMain)
}
