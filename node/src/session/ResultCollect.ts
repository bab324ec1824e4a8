import { Effect, Option } from "effect"
import { resultPath } from "../guest/GuestSetup.ts"
import type { GuestShell } from "../guest/GuestShell.ts"
import { SessionStepFailed } from "./SessionSteps.ts"
import type { Watch } from "./SessionSteps.ts"

/** Reading result.json (at most the cap) takes well under a second even under TCG. */
const resultReadTimeoutMs = 10_000

/**
 * 7. `/output/result.json`, read with the node's own cap and deadline: the guest's `cat` (or its
 * agent) may be replaced by its root. Absent is fine (output null); not JSON or over the cap is the
 * session's error; a guest that sends more than the cap, or never answers, fails the session.
 */
export const collectResult = (shell: GuestShell, capBytes: number, w: Watch) =>
  shell.readFile(resultPath, capBytes).pipe(
    Effect.map(Option.match({
      onNone: (): { output: unknown; error?: string } => ({ output: null }),
      onSome: (bytes) => {
        try {
          return { output: JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown }
        } catch (e) {
          return { output: null, error: `${resultPath} is not valid JSON: ${(e as Error).message}` }
        }
      },
    })),
    Effect.catchTag("GuestFileTooLarge", (e) =>
      e.cutByNode
        ? Effect.fail(
          new SessionStepFailed({
            message: `the guest sent more than the ${e.maxBytes} byte cap for ${resultPath}; the node cut it off`,
          }),
        )
        : Effect.succeed({
          output: null,
          error: `${resultPath} is ${e.bytes} bytes, over the ${e.maxBytes} byte cap`,
        })),
    Effect.timeoutOrElse({
      duration: resultReadTimeoutMs,
      orElse: () =>
        Effect.fail(
          new SessionStepFailed({ message: `reading ${resultPath} took longer than ${resultReadTimeoutMs} ms` }),
        ),
    }),
    Effect.raceFirst(w.vmDied),
  )
