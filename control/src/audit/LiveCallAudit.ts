import { Cause, Context, Effect, Exit } from "effect"
import { AuditLog } from "./AuditLog.ts"

/**
 * The live (Cap'n Web) API's mutating calls, recorded like the REST API's: the key, the call
 * (`live.sessions.create`), the target (`target` of the result, or of the argument when it
 * failed) and `ok` or the error's tag. The AuditLog comes from the context the live API runs in.
 */
export const auditLiveCall = <A, E extends { readonly _tag: string }>(
  context: Context.Context<never>,
  key: { readonly keyId: string; readonly project: string },
  action: string,
  target: (result: A | undefined) => string,
) =>
(effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
  const audit = Context.getOrUndefined(context, AuditLog)
  if (audit === undefined) return effect
  return Effect.onExit(effect, (exit) => {
    const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
    return audit.record({
      actor: `key:${key.keyId}`,
      project: key.project,
      action,
      target: target(Exit.isSuccess(exit) ? exit.value : undefined),
      result: Exit.isSuccess(exit) ? "ok" : error?._tag === "Some" ? error.value._tag : "error",
    })
  })
}
