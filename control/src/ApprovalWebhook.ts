import { Effect } from "effect"
import type { Projects } from "./Projects.ts"

/**
 * Tells a project's approval webhook (if it has one) that something waits for a human: a JSON
 * POST, fire-and-forget (a slow or failing receiver delays and breaks nothing; it is logged).
 * Callers send ids, names and times only: scripts, env and credentials stay behind the API.
 */
export const notifyApprovalWebhook = (
  projects: Projects["Service"],
  project: string,
  body: Record<string, unknown>,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const found = yield* projects.get(project).pipe(Effect.option)
    const url = found._tag === "Some" ? found.value.approvalWebhook : null
    if (url === null) return
    const text = JSON.stringify({ ...body, project })
    yield* Effect.tryPromise(() =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: text,
        signal: AbortSignal.timeout(10_000),
      }).then((r) => r.body?.cancel())
    ).pipe(
      Effect.catchCause((cause) =>
        Effect.logWarning("approval webhook failed").pipe(Effect.annotateLogs({ project, type: body["type"], cause }))
      ),
      Effect.forkDetach,
    )
  })
