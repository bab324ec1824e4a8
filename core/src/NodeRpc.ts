import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { NodeAtCapacity, NodeSessionNotFound, SessionAlreadyRunning, UnknownSnapshot } from "./Errors.ts"
import { SessionId } from "./Ids.ts"
import { NodeInfo } from "./NodeInfo.ts"
import { MemoryDispatch, NodeSessionEvent } from "./SessionMemory.ts"
import { McpDispatchServer } from "./Mcp.ts"
import { ExecInSession, OpenShell, ReadSessionFile, ShellInput, WriteSessionFile } from "./LiveSession.ts"
import { ForwardToPort, OpenPortSocket, SendPortSocket } from "./PortExposure.ts"
import { PauseSession } from "./SessionPause.ts"
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
import { inputMaxBytes } from "./Daemon.ts"
import { EgressApprovalRule } from "./EgressApproval.ts"
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

const inputFileName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Files for /input (never argv): plain names, at most `inputMaxBytes` in all. */
export const SessionInput = Schema.Struct({
  files: Schema.Record(Schema.String, Schema.String).pipe(
    Schema.check(
      checkedKeys((k) => inputFileName.test(k) ? undefined : "must be a plain file name"),
      Schema.isMaxProperties(16),
      Schema.makeFilter((files: { readonly [k: string]: string }) =>
        Object.values(files).reduce((n, v) => n + new TextEncoder().encode(v).length, 0) <= inputMaxBytes ||
        `must total at most ${inputMaxBytes} bytes`
      ),
    ),
  ),
  /** The trigger kind, as PAWS_TRIGGER in the workload's environment. */
  trigger: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isPattern(/^[a-z]{1,32}$/)))),
}).annotate({ identifier: "SessionInput" })
export type SessionInput = typeof SessionInput.Type

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
    /** Requests the proxy holds for a human's decision (EgressApproval rules), and for how long. */
    approvals: Schema.optionalKey(Schema.Array(EgressApprovalRule)),
    approvalTimeoutMs: Schema.optionalKey(
      Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 3_600_000 }))),
    ),
  }),
  metadata: Schema.optionalKey(Metadata),
  /** Set only for sessions control gave a memory key (daemon invocations): /state and LLM history. */
  memory: Schema.optionalKey(MemoryDispatch),
  /** A daemon invocation's trigger payload: files written under /input in the guest, and PAWS_TRIGGER. */
  input: Schema.optionalKey(SessionInput),
  /** MCP servers the guest may use, secrets in clear (memory and this wire only). */
  mcp: Schema.optionalKey(Schema.Array(McpDispatchServer)),
  /** Resume the session this node paused (its saved files) instead of starting a new VM. */
  resume: Schema.optionalKey(Schema.Boolean),
}).annotate({ identifier: "SessionDispatch" })
export type SessionDispatch = typeof SessionDispatch.Type

export const RunSession = Rpc.make("RunSession", {
  payload: SessionDispatch,
  success: NodeSessionEvent,
  // NodeSessionNotFound: the session was cancelled here before its dispatch arrived.
  error: Schema.Union([NodeAtCapacity, UnknownSnapshot, SessionAlreadyRunning, NodeSessionNotFound]),
  stream: true,
})

/**
 * Takes over the event stream of a session this node still runs after the replica that dispatched it went
 * away (the node keeps such sessions for `PAWS_NODE_ADOPT_GRACE_MS`). It starts with the session's latest
 * status and result (either may have been lost with that replica), then every event since, to its end.
 * Not found: the node no longer holds it (the grace passed, or it never started here).
 */
export const AttachSession = Rpc.make("AttachSession", {
  payload: { sessionId: SessionId },
  success: NodeSessionEvent,
  error: NodeSessionNotFound,
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

/** A human's decision on a request the session's proxy holds (an `egress_approval` event). */
export const DecideEgress = Rpc.make("DecideEgress", {
  payload: { sessionId: SessionId, requestId: Schema.String, approve: Schema.Boolean },
  success: Schema.Struct({ delivered: Schema.Boolean }),
  error: NodeSessionNotFound,
})

/** The control↔node contract: control calls these on a node. */
export class NodeRpcs extends RpcGroup.make(
  RunSession,
  AttachSession,
  CancelSession,
  DecideEgress,
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
  PauseSession,
) {}
