import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { NodeAtCapacity, NodeSessionNotFound, SessionAlreadyRunning, UnknownSnapshot } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { NodeInfo } from "./NodeInfo.ts"
import { ExecInSession, OpenShell, ReadSessionFile, ShellInput, WriteSessionFile } from "./LiveSession.ts"
import { ForwardToPort, OpenPortSocket, SendPortSocket } from "./PortExposure.ts"
import { SessionEvent } from "./SessionEvent.ts"
import {
  hardLimits,
  headerNameRegExp,
  HeaderValue,
  Metadata,
  Resources,
  SnapshotName,
  Workload,
} from "./SessionSpec.ts"
import { HostPattern, hostPatternProblem } from "./HostPattern.ts"
import {
  SnapshotBuildEvent,
  SnapshotBuildFailed,
  SnapshotBusy,
  snapshotSetupMaxBytes,
  SnapshotView,
} from "./Snapshot.ts"

/**
 * A record whose every key passes `problem`. Schema.Record with a refined key schema silently
 * drops keys that fail it (found by fuzz-rpc: a dispatch with a bad credential host ran, minus
 * that credential); on this wire a bad key must reject the whole dispatch instead.
 */
const checkedKeys = (problem: (key: string) => string | undefined) =>
  Schema.makeFilter((record: { readonly [key: string]: unknown }) => {
    for (const key of Object.keys(record)) {
      const p = problem(key)
      if (p !== undefined) return `key ${JSON.stringify(key.slice(0, 64))} ${p}`
    }
    return true
  })

const headerNameProblem = (name: string) =>
  headerNameRegExp.test(name) ? undefined : "must be an RFC 9110 header name (token characters)"

/**
 * What control sends a node to run: the spec with defaults filled in and credential values
 * decrypted from the vault. It exists only in memory and on the authenticated RPC wire.
 */
export const SessionDispatch = Schema.Struct({
  sessionId: SessionId,
  snapshot: SnapshotName,
  workload: Workload,
  resources: Resources,
  timeoutMs: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: hardLimits.timeoutMs }))),
  network: Schema.Struct({
    allowOut: Schema.Array(HostPattern),
    credentials: Schema.Record(
      Schema.String,
      Schema.Struct({
        headers: Schema.Record(Schema.String, HeaderValue).pipe(Schema.check(checkedKeys(headerNameProblem))),
      }),
    ).pipe(Schema.check(checkedKeys(hostPatternProblem))),
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

/** A snapshot build as control sends it: defaults filled in, credential values in clear (memory and wire only). */
export const SnapshotBuildDispatch = Schema.Struct({
  name: SnapshotName,
  base: SnapshotName,
  setup: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isMaxLength(snapshotSetupMaxBytes)))),
  network: SessionDispatch.fields.network,
  memoryMB: Resources.fields.memoryMB,
  vcpus: Resources.fields.vcpus,
  timeoutMs: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: hardLimits.timeoutMs }))),
}).annotate({ identifier: "SnapshotBuildDispatch" })
export type SnapshotBuildDispatch = typeof SnapshotBuildDispatch.Type

/** Progress events, then one `built` event; the build stops if the stream is interrupted. */
export const BuildSnapshot = Rpc.make("BuildSnapshot", {
  payload: SnapshotBuildDispatch,
  success: SnapshotBuildEvent,
  error: Schema.Union([UnknownSnapshot, SnapshotBusy, SnapshotBuildFailed]),
  stream: true,
})

/** The node's snapshots (ready or stale) and its builds (running, or failed since it started). */
export const ListSnapshots = Rpc.make("ListSnapshots", {
  success: Schema.Array(SnapshotView),
})

export const DeleteSnapshot = Rpc.make("DeleteSnapshot", {
  payload: { name: SnapshotName },
  success: Schema.Struct({ removed: Schema.Boolean }),
  error: SnapshotBusy,
})

/** The control↔node contract: control calls these on a node. */
export class NodeRpcs extends RpcGroup.make(
  RunSession,
  CancelSession,
  GetNodeStatus,
  BuildSnapshot,
  ListSnapshots,
  DeleteSnapshot,
  ExecInSession,
  ReadSessionFile,
  WriteSessionFile,
  ForwardToPort,
  OpenPortSocket,
  SendPortSocket,
  OpenShell,
  ShellInput,
) {}
