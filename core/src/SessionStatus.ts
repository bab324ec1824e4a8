import { Schema } from "effect"

export const sessionStatuses = [
  "awaiting_approval",
  "pending",
  "starting",
  "running",
  "paused",
  "completed",
  "failed",
  "timeout",
  "cancelled",
] as const
export const SessionStatus = Schema.Literals(sessionStatuses).annotate({ identifier: "SessionStatus" })
export type SessionStatus = typeof SessionStatus.Type

export const terminalStatuses: ReadonlySet<SessionStatus> = new Set(["completed", "failed", "timeout", "cancelled"])
export const isTerminal = (s: SessionStatus): boolean => terminalStatuses.has(s)

/** The legal transitions, encoded once. Terminal states have none. */
export const sessionTransitions: { readonly [S in SessionStatus]: ReadonlyArray<SessionStatus> } = {
  // awaiting_approval → pending: approved; → cancelled: denied, expired or cancelled by its owner.
  awaiting_approval: ["pending", "cancelled"],
  pending: ["starting", "failed", "cancelled"],
  // starting → pending: the node was lost or refused before the VM ran; the session is re-queued.
  starting: ["pending", "running", "failed", "timeout", "cancelled"],
  // running → paused: the VM saved to its node's disk (memory + disk), its slot and proxy freed.
  running: ["completed", "failed", "timeout", "cancelled", "paused"],
  // paused → running: resumed on the same node (the saved files live there); → timeout/failed/cancelled
  // while saved (its running time spent, its files gone, or cancelled by its owner).
  paused: ["running", "cancelled", "failed", "timeout"],
  completed: [],
  failed: [],
  timeout: [],
  cancelled: [],
}

export const canTransition = (from: SessionStatus, to: SessionStatus): boolean => sessionTransitions[from].includes(to)
