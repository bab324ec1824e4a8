import { Effect, Layer, Option } from "effect"
import { nodeSettings } from "../NodeConfig.ts"
import { ImageBuilder } from "../image/ImageBuilder.ts"
import { ensureSnapshot } from "./EnsureSnapshot.ts"

/** One snapshot a node keeps built: its name (= its image's) and the guest memory sessions ask. */
export interface KeptSnapshot {
  readonly name: string
  readonly memoryMB: number
}

/**
 * `PAWS_NODE_SNAPSHOTS`: comma-separated `NAME[:MEMORY_MB]`, e.g. `default,claude-agent:2048`.
 * A snapshot restores only for sessions that ask its memory, so agents' larger guests say theirs.
 */
export const parseKeptSnapshots = (raw: string): ReadonlyArray<KeptSnapshot> | string => {
  const out: Array<KeptSnapshot> = []
  for (const entry of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^([a-z0-9][a-z0-9._-]{0,63})(?::(\d{2,6}))?$/.exec(entry)
    if (m === null) return `"${entry}" must be NAME or NAME:MEMORY_MB, e.g. claude-agent:2048`
    out.push({ name: m[1]!, memoryMB: m[2] === undefined ? 256 : Number(m[2]) })
  }
  return out
}

/**
 * At node start, in the background and one after another: each snapshot of PAWS_NODE_SNAPSHOTS
 * whose image is missing gets its image built (catalogue or saved recipe), then the snapshot is
 * built unless a current one exists. `PAWS_NODE_DEFAULT_SNAPSHOT=0` turns all of it off (tests).
 */
export const KeptSnapshotsOnStart = Layer.effectDiscard(Effect.gen(function* () {
  const enabled = yield* nodeSettings.defaultSnapshot.config
  if (!enabled) return
  const kept = parseKeptSnapshots(yield* nodeSettings.keptSnapshots.config)
  if (typeof kept === "string") return yield* Effect.logError(`PAWS_NODE_SNAPSHOTS: ${kept}; no snapshot built`)
  const images = yield* ImageBuilder
  yield* Effect.forEach(kept, (k) =>
    images.build(k.name).pipe(
      Effect.andThen(ensureSnapshot(k.name, { memoryMB: k.memoryMB })),
      Effect.tap(Option.match({
        onNone: () => Effect.logInfo(`snapshot ${k.name} is current`),
        onSome: (m) => Effect.logInfo(`snapshot ${k.name} built in ${m.buildMs["total"]} ms`),
      })),
      Effect.catch((e) => Effect.logWarning(`snapshot ${k.name} not built: ${e.message}`)),
    ), { discard: true }).pipe(Effect.forkScoped)
}))
