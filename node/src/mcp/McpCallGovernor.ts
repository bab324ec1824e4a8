import { randomUUID } from "node:crypto"
import { mcpHost } from "@paws/core"
import type { McpDispatchServer } from "@paws/core"

/** A tool call held for a human, reported as the same `egress_approval` event the proxy's holds use. */
export interface McpHeldCall {
  readonly requestId: string
  readonly rule: string
  readonly host: string
  readonly method: string
  readonly path: string
}

export type McpVerdict = { readonly allow: true } | { readonly allow: false; readonly reason: string }

export interface McpApprovalOptions {
  /** How long a held call waits for a decision before it is refused (the session's approval timeout). */
  readonly timeoutMs: number
  readonly onHeld: (held: McpHeldCall) => void
}

export interface McpCallGovernor {
  /** Decides a call the allowlist admits: rate limit first (so no human is asked for a call over it), then approval. */
  readonly admit: (call: { readonly server: string; readonly tool: string }) => Promise<McpVerdict>
  /** A human's decision on a held call (DecideEgress); false when no such call is held here. */
  readonly decide: (requestId: string, approve: boolean) => boolean
  /** The session ends: every held call is refused. */
  readonly close: () => void
}

/**
 * Governance of one session's MCP tool calls. `maxCallsPerMinute` (the server's registration) is a
 * token bucket per server in this node's memory: a session's gateway lives on exactly one node, so
 * the count needs no shared store (it starts full again if the session were ever restarted).
 * `approve` tools (the session's grant) are held until `decide` or the timeout.
 */
export const makeMcpCallGovernor = (
  servers: ReadonlyArray<McpDispatchServer>,
  approvals: McpApprovalOptions | undefined,
  now: () => number = () => performance.now(),
): McpCallGovernor => {
  const buckets = new Map(
    servers.filter((s) => s.maxCallsPerMinute !== undefined).map((s) => [
      s.name,
      { limit: s.maxCallsPerMinute!, tokens: s.maxCallsPerMinute!, at: now() },
    ]),
  )
  const needsApproval = new Map(servers.map((s) => [s.name, new Set(s.approve ?? [])]))
  const held = new Map<string, { readonly settle: (verdict: McpVerdict) => void }>()

  const withinRate = (server: string): McpVerdict => {
    const bucket = buckets.get(server)
    if (bucket === undefined) return { allow: true }
    const t = now()
    bucket.tokens = Math.min(bucket.limit, bucket.tokens + ((t - bucket.at) * bucket.limit) / 60_000)
    bucket.at = t
    if (bucket.tokens < 1) {
      return {
        allow: false,
        reason: `rate limited: MCP server ${server} allows ${bucket.limit} tool calls per minute (maxCallsPerMinute)`,
      }
    }
    bucket.tokens -= 1
    return { allow: true }
  }

  const approval = (opts: McpApprovalOptions, server: string, tool: string): Promise<McpVerdict> =>
    new Promise((resolve) => {
      const requestId = randomUUID()
      const timeoutMs = opts.timeoutMs
      const timer = setTimeout(
        () => settle({ allow: false, reason: `no human approved it within ${Math.round(timeoutMs / 1000)}s` }),
        timeoutMs,
      )
      const settle = (verdict: McpVerdict) => {
        if (!held.delete(requestId)) return
        clearTimeout(timer)
        resolve(verdict)
      }
      held.set(requestId, { settle })
      // Only server and tool are shown: arguments may carry what the approver must not see.
      opts.onHeld({
        requestId,
        rule: `mcp ${server}/${tool} (approve)`,
        host: mcpHost,
        method: "tools/call",
        path: `/${server}/${tool}`,
      })
    })

  return {
    admit: ({ server, tool }) => {
      const rate = withinRate(server)
      if (!rate.allow) return Promise.resolve(rate)
      if (!needsApproval.get(server)?.has(tool)) return Promise.resolve({ allow: true })
      // Without approval options no human can be asked: such a call is refused at once.
      if (approvals === undefined) {
        return Promise.resolve({ allow: false, reason: "it needs a human's approval and none can be asked" })
      }
      return approval(approvals, server, tool)
    },
    decide: (requestId, approve) => {
      const call = held.get(requestId)
      if (call === undefined) return false
      call.settle(approve ? { allow: true } : { allow: false, reason: "a human denied it" })
      return true
    },
    close: () => {
      for (const call of [...held.values()]) call.settle({ allow: false, reason: "the session ended" })
    },
  }
}
