import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runHostCommand } from "../HostCommand.ts"
import { controlPortName } from "../vmm/MachineArgs.ts"
import { GuestAgentError } from "./GuestAgent.ts"

/** Guest paths of the agent; /run is tmpfs, so they live in the snapshot's RAM, not in the image. */
export const agentPath = "/run/paws/agent"
/** The static agent binary (paws-agent.c): the port loop, `restore`, `exec` and shells (paws-pty.c). */
export const agentBinaryPath = "/run/paws/paws-agent"
/** The guest side's start: find the port by name, then become the static agent (paws-agent.c). */
export const agentScript = `#!/bin/sh
dev=
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = ${controlPortName} ] && dev=/dev/\${p##*/}; done
[ -n "$dev" ] || { echo "paws agent: no ${controlPortName} port" >/dev/ttyS0; exit 1; }
exec ${agentBinaryPath} "$dev"
`

const sources = ["paws-agent.c", "paws-restore.c", "paws-sys.h", "paws-pty.c"].map((f) =>
  fileURLToPath(new URL(`./${f}`, import.meta.url))
)

/** Compiles the static, libc-free guest agent once per source version (needs gcc on the node). */
export const buildAgentBinary = (cacheDir: string): Effect.Effect<string, GuestAgentError> =>
  Effect.gen(function* () {
    const hash = createHash("sha256")
    for (const s of sources) hash.update(yield* Effect.promise(() => fs.readFile(s)))
    const out = path.join(cacheDir, `paws-agent-${hash.digest("hex").slice(0, 16)}`)
    const exists = yield* Effect.promise(() => fs.access(out).then(() => true, () => false))
    if (exists) return out
    yield* Effect.promise(() => fs.mkdir(cacheDir, { recursive: true }))
    const tmp = `${out}.${randomBytes(4).toString("hex")}`
    yield* runHostCommand("gcc", [
      ...["-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-no-pie", "-s"],
      ...["-o", tmp, sources[0]!, sources[1]!],
    ]).pipe(Effect.mapError((e) => new GuestAgentError({ message: `gcc paws-agent.c failed: ${e.stderr}` })))
    yield* Effect.promise(() => fs.rename(tmp, out))
    return out
  })
