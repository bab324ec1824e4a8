import { randomUUID } from "node:crypto"
import * as Schema from "effect/Schema"
import { egressRuleMatches, type ParsedEgressRule, parseEgressRule } from "@paws/core/EgressApproval"
import { ProxyDecision } from "@paws/core/ProxyConfig"
import type { ProxyMessage } from "@paws/core/ProxyConfig"

export type GateOutcome = "approved" | "denied" | "timeout"

export interface EgressGate {
  /** Undefined when no rule matches (forward at once); else settles when decided or timed out. */
  readonly hold: (method: string, host: string, path: string) => Promise<GateOutcome> | undefined
  /** A stdin line from the parent; anything but a decision on a held request is ignored. */
  readonly onParentLine: (line: string) => void
  /** Held requests are refused when the proxy stops. */
  readonly close: () => void
}

export const defaultApprovalTimeoutMs = 5 * 60 * 1000

const decodeDecision = Schema.decodeUnknownOption(Schema.fromJsonString(ProxyDecision))

/**
 * Egress approval: a request matching one of the session's approval rules is held (its body
 * unread) while the parent asks a human, and goes on only on an approving decision line.
 */
export const makeEgressGate = (
  rules: ReadonlyArray<string>,
  timeoutMs: number,
  send: (m: ProxyMessage) => void,
): EgressGate => {
  const parsed: Array<[string, ParsedEgressRule]> = rules.flatMap((r) => {
    const p = parseEgressRule(r)
    return typeof p === "string" ? [] : [[r, p] as [string, ParsedEgressRule]]
  })
  const held = new Map<string, (o: GateOutcome) => void>()

  const hold = (method: string, host: string, path: string) => {
    const match = parsed.find(([, rule]) => egressRuleMatches(rule, method, host, path))
    if (match === undefined) return undefined
    const requestId = randomUUID()
    return new Promise<GateOutcome>((resolve) => {
      const timer = setTimeout(() => settle("timeout"), timeoutMs)
      const settle = (o: GateOutcome) => {
        clearTimeout(timer)
        held.delete(requestId)
        resolve(o)
      }
      held.set(requestId, settle)
      send({ _tag: "approval", requestId, rule: match[0], host, method, path })
    })
  }

  const onParentLine = (line: string) => {
    const decision = decodeDecision(line)
    if (decision._tag === "None") return
    held.get(decision.value.requestId)?.(decision.value.approve ? "approved" : "denied")
  }

  const close = () => {
    for (const settle of [...held.values()]) settle("denied")
  }

  return { hold, onParentLine, close }
}

/** What the guest reads when a held request is not approved (a 403 with a plain reason). */
export const gateRefusal = (outcome: "denied" | "timeout", method: string, host: string, timeoutMs: number) =>
  outcome === "denied"
    ? {
      status: 403,
      decision: "approval_denied" as const,
      reason: `${method} ${host} needs a human's approval (network.approvals) and it was denied; ` +
        "do not retry this request",
    }
    : {
      status: 403,
      decision: "approval_timeout" as const,
      reason: `${method} ${host} needs a human's approval (network.approvals) and none came within ` +
        `${Math.round(timeoutMs / 1000)} s, so it was refused; ask the session owner to approve it, then retry`,
    }
