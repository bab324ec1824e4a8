import { Schema } from "effect"
import { NodeId } from "./Ids.ts"

export const NodeCapacity = Schema.Struct({
  maxConcurrent: Schema.Int,
  running: Schema.Int,
  available: Schema.Int,
}).annotate({ identifier: "NodeCapacity" })
export type NodeCapacity = typeof NodeCapacity.Type

export const NodeStatus = Schema.Literals(["ready", "draining", "lost"]).annotate({ identifier: "NodeStatus" })
export type NodeStatus = typeof NodeStatus.Type

export const NodeInfo = Schema.Struct({
  id: NodeId,
  name: Schema.String,
  capacity: NodeCapacity,
  status: NodeStatus,
  labels: Schema.Record(Schema.String, Schema.String),
  lastSeenAt: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "NodeInfo" })
export type NodeInfo = typeof NodeInfo.Type
