import { Effect, Option } from "effect"
import type { MemoryDispatch } from "@paws/core"
import type { GuestShell, GuestShellError } from "../guest/GuestShell.ts"
import { SessionStepFailed } from "./SessionSteps.ts"
import type { Watch } from "./SessionSteps.ts"

export const statePath = "/state"
export const historyPath = "/input/history.jsonl"
const stateIn = "/run/paws-state-in.tar.gz"
const stateOut = "/run/paws-state-out.tar.gz"
/** Packing and reading `/state` (at most the cap, ~MBs) takes seconds even under TCG. */
const stateTimeoutMs = 60_000

const fail = (message: string) => new SessionStepFailed({ message })

/**
 * `/state` and `/input/history.jsonl` in the guest, before the workload: the latest good state
 * (a tar.gz that control kept) unpacked into an empty `/state`, and the earlier LLM exchanges.
 * A state that does not unpack fails the session rather than running on half a state.
 */
export const restoreMemory = (shell: GuestShell, memory: MemoryDispatch, w: Watch) =>
  Effect.gen(function* () {
    const history = memory.history ?? ""
    yield* shell.writeFile(historyPath, history, { mode: 0o600 })
    const unpack = memory.state === undefined
      ? `mkdir -p ${statePath}`
      : `mkdir -p ${statePath} && tar -xzf ${stateIn} -C ${statePath}; s=$?; rm -f ${stateIn}; exit $s`
    if (memory.state !== undefined) {
      yield* shell.writeFile(stateIn, Buffer.from(memory.state, "base64"), { mode: 0o600 })
    }
    const r = yield* shell.run(unpack, { profile: false })
    if (r.exitCode !== 0) return yield* fail(`restoring ${statePath} failed: ${r.stderr.trim()}`)
  }).pipe(
    Effect.mapError((e) => e._tag === "SessionStepFailed" ? e : fail(`restoring memory failed: ${e.message}`)),
    Effect.timeoutOrElse({
      duration: stateTimeoutMs,
      orElse: () => Effect.fail(fail(`restoring ${statePath} took longer than ${stateTimeoutMs} ms`)),
    }),
    Effect.raceFirst(w.vmDied),
  )

/**
 * `/state` packed after a workload that exited 0, read with the node's cap (the guest's own size
 * check is a courtesy). `saved` with the archive (base64), or `skipped` with a note when it is over the cap or cannot
 * be packed: the last good state stays. A guest that never answers fails the session.
 */
type Collected = { readonly _tag: "saved"; readonly tar: string } | { readonly _tag: "skipped"; readonly note: string }

export const collectState = (shell: GuestShell, maxBytes: number, w: Watch) =>
  Effect.gen(function* (): Effect.fn.Return<Collected, GuestShellError> {
    const packed = yield* shell.run(`tar -czf ${stateOut} -C ${statePath} .`, { profile: false })
    if (packed.exitCode !== 0) {
      return { _tag: "skipped", note: `${statePath} not saved: tar failed: ${packed.stderr.trim()}` }
    }
    const read = yield* shell.readFile(stateOut, maxBytes).pipe(
      Effect.map((bytes) => ({ bytes, over: undefined as number | undefined })),
      Effect.catchTag("GuestFileTooLarge", (e) => Effect.succeed({ bytes: Option.none<Uint8Array>(), over: e.bytes })),
    )
    if (read.over !== undefined || Option.isNone(read.bytes)) {
      const size = read.over === undefined ? "missing" : `${read.over} bytes packed, over the ${maxBytes} byte cap`
      return { _tag: "skipped", note: `${statePath} not saved (${size}); the last saved state stays` }
    }
    return { _tag: "saved", tar: Buffer.from(read.bytes.value).toString("base64") }
  }).pipe(
    Effect.mapError((e) => fail(`saving ${statePath} failed: ${e.message}`)),
    Effect.timeoutOrElse({
      duration: stateTimeoutMs,
      orElse: () => Effect.fail(fail(`saving ${statePath} took longer than ${stateTimeoutMs} ms`)),
    }),
    Effect.raceFirst(w.vmDied),
  )
