import type { SessionDispatch } from "@paws/core"
import { Effect } from "effect"
import { defaultEgressTimeoutMs } from "./EgressApprovals.ts"
import { McpServers } from "./McpServers.ts"
import { MemoryStore } from "./MemoryStore.ts"
import type { ClaimedSession } from "./SessionRows.ts"
import { Vault } from "./Vault.ts"

/**
 * What a claimed session's dispatch carries to its node: its spec, its credentials and trigger input
 * opened from the vault, its MCP servers resolved, its memory. `secrets` are the values sent, which
 * anything logged about this dispatch must redact (MCP secrets as credentials are).
 */
export const makeDispatchPayload = Effect.gen(function* () {
  const vault = yield* Vault
  const mcpServers = yield* McpServers
  const memories = yield* MemoryStore
  return (claimed: ClaimedSession, resume: boolean) =>
    Effect.gen(function* () {
      const { id, spec } = claimed
      const credentials = claimed.credentials === null
        ? {}
        : JSON.parse(yield* vault.open(claimed.credentials, id)) as SessionDispatch["network"]["credentials"]
      const mcp = spec.mcp === undefined || spec.mcp.length === 0 ? [] : yield* mcpServers.resolve(spec.mcp)
      const secrets: SessionDispatch["network"]["credentials"] = {
        ...credentials,
        ...Object.fromEntries(mcp.map((m) => [`mcp:${m.name}`, { headers: { ...m.env, ...m.headers } }])),
      }
      const input = claimed.input === null
        ? undefined
        : JSON.parse(yield* vault.open(claimed.input, `${id}:input`)) as SessionDispatch["input"]
      const dispatch: SessionDispatch = {
        sessionId: id,
        snapshot: spec.snapshot,
        workload: spec.workload,
        resources: spec.resources,
        timeoutMs: spec.timeoutMs,
        network: {
          allowOut: spec.network.allowOut,
          credentials,
          ...(spec.network.approvals === undefined ? {} : { approvals: spec.network.approvals }),
          // Also bounds the MCP gateway's holds of `approve` tool calls.
          ...(spec.network.approvals === undefined && !mcp.some((m) => m.approve !== undefined) ? {} : {
            approvalTimeoutMs: (spec.network.approvalTimeoutSeconds ?? defaultEgressTimeoutMs / 1000) * 1000,
          }),
        },
        ...(spec.metadata === undefined ? {} : { metadata: spec.metadata }),
        ...(claimed.memory === null ? {} : { memory: yield* memories.dispatchFor(claimed.memory) }),
        ...(input === undefined ? {} : { input }),
        ...(mcp.length === 0 ? {} : { mcp }),
        ...(resume ? { resume: true } : {}),
      }
      return { dispatch, secrets }
    })
})
