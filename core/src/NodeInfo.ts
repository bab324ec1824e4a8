import { Schema } from "effect"
import { NodeId } from "./Ids.ts"
import { NodeLabels } from "./NodeLabels.ts"

export const NodeCapacity = Schema.Struct({
  maxConcurrent: Schema.Int,
  running: Schema.Int,
  available: Schema.Int,
  /** Why the node takes `maxConcurrent`, e.g. "64 VMs: 20.1 GiB available / 310 MiB per VM measured over 12 VMs". */
  basis: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "NodeCapacity" })
export type NodeCapacity = typeof NodeCapacity.Type

export const NodeStatus = Schema.Literals(["ready", "draining", "lost"]).annotate({ identifier: "NodeStatus" })
export type NodeStatus = typeof NodeStatus.Type

/**
 * A snapshot as the node reports it for placement: ready to run, being built (sessions wait for it),
 * or stale (present but not restorable; `error` says why and how to rebuild).
 */
export const NodeSnapshot = Schema.Struct({
  name: Schema.String,
  status: Schema.Literals(["ready", "building", "stale"]),
  error: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "NodeSnapshot" })
export type NodeSnapshot = typeof NodeSnapshot.Type

export const NodeInfo = Schema.Struct({
  id: NodeId,
  name: Schema.String,
  capacity: NodeCapacity,
  status: NodeStatus,
  labels: NodeLabels,
  lastSeenAt: Schema.optionalKey(Schema.String),
  /** Absent: the node does not say (placement then assumes it can run any snapshot). */
  snapshots: Schema.optionalKey(Schema.Array(NodeSnapshot)),
  /** Sessions paused on this node's disk (they survive its restarts and resume only here). */
  pausedSessions: Schema.optionalKey(Schema.Array(Schema.String)),
}).annotate({ identifier: "NodeInfo" })
export type NodeInfo = typeof NodeInfo.Type
