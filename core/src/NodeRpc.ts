import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { NodeAtCapacity, NodeSessionNotFound, SessionAlreadyRunning, UnknownSnapshot } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { NodeInfo } from "./NodeInfo.ts"
import { SessionEvent } from "./SessionEvent.ts"
import { Metadata, Resources, SnapshotName, Workload } from "./SessionSpec.ts"
import { HostPattern } from "./HostPattern.ts"

/**
 * What control sends a node to run: the spec with defaults filled in and credential values
 * decrypted from the vault. It exists only in memory and on the authenticated RPC wire.
 */
export const SessionDispatch = Schema.Struct({
  sessionId: SessionId,
  snapshot: SnapshotName,
  workload: Workload,
  resources: Resources,
  timeoutMs: Schema.Int,
  network: Schema.Struct({
    allowOut: Schema.Array(HostPattern),
    credentials: Schema.Record(HostPattern, Schema.Struct({ headers: Schema.Record(Schema.String, Schema.String) })),
  }),
  metadata: Schema.optionalKey(Metadata),
}).annotate({ identifier: "SessionDispatch" })
export type SessionDispatch = typeof SessionDispatch.Type

export const RunSession = Rpc.make("RunSession", {
  payload: SessionDispatch,
  success: SessionEvent,
  error: Schema.Union([NodeAtCapacity, UnknownSnapshot, SessionAlreadyRunning]),
  stream: true,
})

export const CancelSession = Rpc.make("CancelSession", {
  payload: { sessionId: SessionId },
  error: NodeSessionNotFound,
})

export const GetNodeStatus = Rpc.make("NodeStatus", {
  success: NodeInfo,
})

/** The control↔node contract: control calls these on a node. */
export class NodeRpcs extends RpcGroup.make(RunSession, CancelSession, GetNodeStatus) {}
