import { Effect } from "effect"
import { type AuditLog, currentActor } from "./AuditLog.ts"

/**
 * Records the creation or revocation of an API key or node token, by the key in the current
 * request (or `system`, e.g. the first admin key). Names and ids only: the secret never.
 */
export const recordCredential = (
  audit: AuditLog["Service"],
  action: "apikey.created" | "apikey.revoked" | "nodetoken.created" | "nodetoken.revoked",
  id: string,
  detail: Record<string, unknown>,
) => Effect.flatMap(currentActor, (actor) => audit.record({ actor, action, target: id, result: "ok", detail }))
