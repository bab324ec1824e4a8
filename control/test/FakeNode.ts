// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import {
  LiveSessionError,
  type NodeId,
  type NodeInfo,
  NodeRpcs,
  NodeSessionNotFound,
  SessionAlreadyRunning,
  type SessionDispatch,
  type SessionEvent,
  SessionNotPausable,
  type SnapshotBuildDispatch,
  type SnapshotBuildEvent,
  SnapshotBuildFailed,
  type SnapshotView,
  UnknownSnapshot,
  workloadText,
} from "@paws/core"
import { Deferred, Effect, Layer, Queue, type Scope, Stream } from "effect"
import { WebSocket } from "ws"
import { RpcTest } from "effect/rpc"
import type { NodeRegistry } from "../src/NodeRegistry.ts"

export interface FakeNode {
  readonly info: NodeInfo
  /** Every dispatch received, with decrypted credentials, in arrival order. */
  readonly dispatched: Array<SessionDispatch>
  readonly cancelled: Array<string>
  /** Sessions paused here (PauseSession on a `hang` session); a resume dispatch takes one out. */
  readonly paused: Set<string>
  /** Every snapshot build received, with credentials, in arrival order. */
  readonly snapshotBuilds: Array<SnapshotBuildDispatch>
}

const now = () => new Date().toISOString()

/** What a node whose schema refuses a payload could answer: issue text quoting the values it saw. */
const rejection = (network: SessionDispatch["network"]) =>
  `Expected a dispatch this node understands, got ${JSON.stringify(network)}\n  at ["network"]["credentials"]`

/**
 * An in-process node speaking the real NodeRpcs contract (through RpcTest, i.e. the real
 * RPC client and server with serialization bypassed). The workload script selects behaviour:
 * `hang` runs until CancelSession (`chatty hang` printing a line every 100 ms); `crash` dies after starting to run (node lost); `vanish` dies before the VM starts;
 * `dropstream N` runs, then ends its stream after N ms without an outcome (the node dropping its follower);
 * `stillheld N` is refused as already running for its first N dispatches; `reject` refuses the dispatch with issue text that quotes its credentials (setup `reject` does so for a build); `slow`
 * spaces events 100 ms apart; `auditflood N` streams N audit events at once; anything else completes with output, an
 * audit event and a result.
 */
export const registerFakeNode = (
  registry: NodeRegistry["Service"],
  options: {
    readonly id: string
    readonly maxConcurrent: number
    readonly stallOn?: string
    readonly labels?: Record<string, string>
    /** What the node reports holding (placement); absent = it does not say. */
    readonly snapshots?: NodeInfo["snapshots"]
    /** Report the sessions paused here in NodeStatus (`pausedSessions`), as a real node does. */
    readonly reportsPaused?: boolean
    /** Snapshots it already holds ready (ListSnapshots), e.g. the instance's own from PAWS_NODE_SNAPSHOTS. */
    readonly built?: ReadonlyArray<string>
    /** Exposed ports of its sessions relay to this loopback HTTP server (`http://127.0.0.1:PORT`). */
    readonly portTarget?: string
  },
): Effect.Effect<FakeNode, never, Scope.Scope> =>
  Effect.gen(function* () {
    /** Open WebSockets to the port target, by the socket id control chose. */
    const portSockets = new Map<string, WebSocket>()
    const info: NodeInfo = {
      id: options.id as NodeId,
      name: options.id,
      capacity: { maxConcurrent: options.maxConcurrent, running: 0, available: options.maxConcurrent },
      status: "ready",
      labels: options.labels ?? { fake: "true" },
      ...(options.snapshots === undefined ? {} : { snapshots: options.snapshots }),
    }
    const node: FakeNode = { info, dispatched: [], cancelled: [], paused: new Set(), snapshotBuilds: [] }
    const snapshots = new Map<string, SnapshotView>(
      (options.built ?? []).map((name) => [name, { name, node: options.id, status: "ready" }]),
    )

    /** Snapshot builds: base `missing` is unknown; setup `fail` fails, `hang` never ends; else built after 3 phases. */
    const buildSnapshot = (d: SnapshotBuildDispatch): Stream.Stream<SnapshotBuildEvent, any> => {
      if (d.base === "missing") {
        return Stream.fail(new UnknownSnapshot({ snapshot: d.base, message: `no guest image named "${d.base}"` }))
      }
      node.snapshotBuilds.push(d)
      const progress = Stream.fromIterable(["queued", "started", "booted"]).pipe(
        Stream.map((phase, i): SnapshotBuildEvent => ({ _tag: "progress", phase, ms: i * 10 })),
        Stream.tap(() => Effect.sleep(20)),
      )
      if (d.setup?.includes("reject")) return Stream.die(rejection(d.network))
      if (d.setup?.includes("hang")) return Stream.concat(progress, Stream.never)
      if (d.setup?.includes("fail")) {
        return Stream.concat(
          progress,
          Stream.fail(new SnapshotBuildFailed({ snapshot: d.name, message: "setup script exited 1" })),
        )
      }
      const view: SnapshotView = {
        name: d.name,
        node: options.id,
        status: "ready",
        manifest: {
          image: { name: d.base, hash: "f".repeat(64) },
          memoryMB: d.memoryMB,
          vcpus: d.vcpus,
          accelerator: "tcg",
          cmdline: "console=ttyS0",
          devices: ["-M", "microvm"],
          macPlan: { guestMac: "02:00:00:00:00:02", hostMac: "02:00:00:00:00:01" },
          createdAt: now(),
          buildMs: { started: 10, total: 30 },
          setupSha256: "0".repeat(64),
        },
      }
      return Stream.concat(
        progress,
        Stream.fromEffect(Effect.sync((): SnapshotBuildEvent => {
          snapshots.set(d.name, view)
          return { _tag: "built", snapshot: view }
        })),
      )
    }
    const cancels = new Map<string, Deferred.Deferred<void>>()
    /** `hang` sessions can be paused: the stream ends with `paused`; a `resume` dispatch runs it again. */
    const pauses = new Map<string, Deferred.Deferred<void>>()
    /** `egress` sessions: the proxy holds one request (id `held-<session>`) until DecideEgress. */
    const held = new Map<string, Deferred.Deferred<boolean>>()

    const run = (d: SessionDispatch): Stream.Stream<SessionEvent, any> => {
      if (d.resume === true && !node.paused.delete(d.sessionId)) {
        return Stream.fail(new SessionAlreadyRunning({ sessionId: d.sessionId, message: "not paused here" }))
      }
      node.dispatched.push(d)
      const script = workloadText(d.workload).text
      // `stillheld N`: the node still holds an earlier attempt for the first N dispatches (a dead replica's).
      const stillHeld = /stillheld (\d+)/.exec(script)
      if (
        stillHeld !== null &&
        node.dispatched.filter((x) => x.sessionId === d.sessionId).length <= Number(stillHeld[1] ?? 0)
      ) {
        return Stream.fail(new SessionAlreadyRunning({ sessionId: d.sessionId, message: "already running here" }))
      }
      const gap = script.includes("slow") ? 100 : 5
      const paced = (events: ReadonlyArray<SessionEvent>) =>
        Stream.fromIterable(events).pipe(Stream.tap(() => Effect.sleep(gap)))
      const start = paced([
        { _tag: "status", status: "starting", at: now() },
        { _tag: "status", status: "running", at: now() },
      ])
      const drop = /dropstream (\d+)/.exec(script)
      if (drop !== null) {
        return Stream.concat(start, Stream.fromEffect(Effect.sleep(Number(drop[1]))).pipe(Stream.drain))
      }
      if (options.stallOn !== undefined && script.includes(options.stallOn)) {
        return Stream.never // accepted but never reports back: the session stays "starting"
      }
      if (script.includes("hang")) {
        const cancelled = Deferred.makeUnsafe<void>()
        cancels.set(d.sessionId, cancelled)
        const paused = Deferred.makeUnsafe<void>()
        pauses.set(d.sessionId, paused)
        const over = Effect.raceFirst(Deferred.await(cancelled), Deferred.await(paused))
        // `chatty hang`: a stdout line every 100 ms until cancelled or paused (output to watch arrive live).
        const chatter = script.includes("chatty")
          ? Stream.tick(100).pipe(
            Stream.mapAccum(() => 0, (n): readonly [number, ReadonlyArray<SessionEvent>] => [n + 1, [
              { _tag: "output", stream: "stdout", data: `tick ${n + 1}\n` },
            ]]),
            Stream.interruptWhen(over),
          )
          : Stream.empty
        const ended = Deferred.await(cancelled).pipe(
          Effect.as<SessionEvent>({ _tag: "status", status: "cancelled", at: now(), reason: "cancelled" }),
          Effect.raceFirst(
            Deferred.await(paused).pipe(Effect.as<SessionEvent>({ _tag: "status", status: "paused", at: now() })),
          ),
          Effect.ensuring(Effect.sync(() => (cancels.delete(d.sessionId), pauses.delete(d.sessionId)))),
        )
        const head = d.resume === true ? paced([{ _tag: "status", status: "running", at: now() }]) : start
        return Stream.concat(Stream.concat(head, chatter), Stream.fromEffect(ended))
      }
      if (script.includes("reject")) return Stream.die(rejection(d.network))
      if (script.includes("egress")) {
        const decided = Deferred.makeUnsafe<boolean>()
        const requestId = `held-${d.sessionId}`
        held.set(requestId, decided)
        // A granted MCP `approve` tool: the gateway holds its call (McpCallGovernor's event shape).
        const mcp = d.mcp?.find((m) => (m.approve ?? []).length > 0)
        const ask: SessionEvent = mcp === undefined
          ? {
            _tag: "egress_approval",
            requestId,
            rule: d.network.approvals?.[0] ?? "none",
            host: "api.github.com",
            method: "POST",
            path: "/repos/paws/merges",
          }
          : {
            _tag: "egress_approval",
            requestId,
            rule: `mcp ${mcp.name}/${mcp.approve![0]} (approve)`,
            host: "mcp.paws.internal",
            method: "tools/call",
            path: `/${mcp.name}/${mcp.approve![0]}`,
          }
        return Stream.concat(
          Stream.concat(start, Stream.make(ask)),
          Stream.fromEffect(Deferred.await(decided)).pipe(
            Stream.flatMap((approved) =>
              Stream.fromIterable<SessionEvent>([
                { _tag: "output", stream: "stdout", data: approved ? "merged\n" : "403 from the proxy\n" },
                { _tag: "status", status: "completed", at: now() },
              ])
            ),
          ),
        )
      }
      const flood = /auditflood (\d+)/.exec(script)
      if (flood !== null) {
        // As fast as the stream goes: N audit events (every 10th host repeats), then the end.
        const events = Array.from({ length: Number(flood[1]) }, (_, i): SessionEvent => ({
          _tag: "audit",
          event: { time: now(), decision: "dns_refused", host: `n${i % 10 === 0 ? 0 : i}.flood.test`, reason: "DNS A" },
        }))
        return Stream.concat(
          start,
          Stream.fromIterable<SessionEvent>([
            ...events,
            { _tag: "result", result: { exitCode: 0, stdout: "", stderr: "", output: null, truncated: false } },
            { _tag: "status", status: "completed", at: now() },
          ]),
        )
      }
      if (script.includes("vanish")) return Stream.die(new Error("node went away before starting the VM"))
      if (script.includes("crash")) return Stream.concat(start, Stream.die(new Error("node lost its VM host")))
      return Stream.concat(
        start,
        paced([
          {
            _tag: "output",
            stream: "stdout",
            data: script.includes("binary") ? "a\u0000b\ud800" : `hello from ${d.sessionId}\n`,
          },
          { _tag: "output", stream: "stderr", data: "a warning\n" },
          {
            _tag: "audit",
            event: {
              time: now(),
              decision: "allowed",
              host: "api.example.com",
              method: "GET",
              status: 200,
              injected: ["x-api-key"],
            },
          },
          {
            _tag: "result",
            result: {
              exitCode: 0,
              stdout: `hello from ${d.sessionId}\n`,
              stderr: "a warning\n",
              output: { ok: true },
              truncated: false,
            },
          },
          { _tag: "status", status: "completed", at: now() },
        ]),
      )
    }

    const handlers = NodeRpcs.toLayer({
      RunSession: (d) => run(d),
      // Holds nothing after its caller goes away (the real node's adoption is tested with real nodes).
      AttachSession: ({ sessionId }) =>
        Stream.fail(new NodeSessionNotFound({ sessionId, message: `session ${sessionId} is not held here` })),
      CancelSession: ({ sessionId }) =>
        Effect.gen(function* () {
          node.cancelled.push(sessionId)
          if (node.paused.delete(sessionId)) return
          const d = cancels.get(sessionId)
          if (d === undefined) {
            return yield* new NodeSessionNotFound({ sessionId, message: "not running here" })
          }
          yield* Deferred.succeed(d, undefined)
        }),
      DecideEgress: ({ requestId, approve }) =>
        Effect.sync(() => {
          const d = held.get(requestId)
          if (d !== undefined) Deferred.doneUnsafe(d, Effect.succeed(approve))
          return { delivered: d !== undefined }
        }),
      PauseSession: ({ sessionId }) =>
        Effect.gen(function* () {
          const d = pauses.get(sessionId)
          if (d === undefined) {
            return yield* new SessionNotPausable({ sessionId, message: "only `hang` sessions pause here" })
          }
          node.paused.add(sessionId)
          yield* Deferred.succeed(d, undefined)
        }),
      NodeStatus: () => Effect.sync(() => options.reportsPaused ? { ...info, pausedSessions: [...node.paused] } : info),
      BuildSnapshot: (d) => buildSnapshot(d),
      ListSnapshots: () => Effect.sync(() => [...snapshots.values()]),
      DeleteSnapshot: ({ name }) => Effect.sync(() => ({ removed: snapshots.delete(name) })),
      // No guest here: exec and files are tested against real VMs (clients/test/e2e-live.test.ts).
      ExecInSession: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "fake node" })),
      ReadSessionFile: ({ sessionId }) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "fake node" })),
      WriteSessionFile: ({ sessionId }) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "fake node" })),
      ForwardToPort: ({ sessionId, method, path, headers, body }) =>
        options.portTarget === undefined
          ? Stream.fail(new NodeSessionNotFound({ sessionId, message: "fake node" }))
          : Stream.unwrap(Effect.promise(async () => {
            const res = await fetch(options.portTarget + path, {
              method,
              headers: headers.filter(([k]) => k !== "host") as Array<[string, string]>,
              ...(method === "GET" || method === "HEAD" ? {} : { body: body as Uint8Array<ArrayBuffer> }),
            })
            const data = new Uint8Array(await res.arrayBuffer())
            return Stream.make(
              { _tag: "head" as const, status: res.status, headers: [...res.headers] },
              { _tag: "body" as const, data },
            )
          })),
      // Like the node's own client: a WebSocket to the port target, messages relayed both ways.
      OpenPortSocket: ({ sessionId, socketId, path, cookie }) =>
        options.portTarget === undefined
          ? Stream.fail(new NodeSessionNotFound({ sessionId, message: "fake node" }))
          : Stream.callback<{ data: Uint8Array; text: boolean }>((queue) =>
            Effect.acquireRelease(
              Effect.sync(() => {
                const ws = new WebSocket(options.portTarget!.replace(/^http/, "ws") + path, {
                  ...(cookie === undefined ? {} : { headers: { cookie } }),
                })
                ws.on(
                  "message",
                  (data: Buffer, binary: boolean) =>
                    Queue.offerUnsafe(queue, { data: new Uint8Array(data), text: !binary }),
                )
                ws.on("close", () => Queue.endUnsafe(queue))
                ws.on("error", () => Queue.endUnsafe(queue))
                portSockets.set(socketId, ws)
                return ws
              }),
              (ws) => Effect.sync(() => (portSockets.delete(socketId), ws.close())),
            )
          ),
      SendPortSocket: ({ socketId, message }) =>
        Effect.suspend(() => {
          const ws = portSockets.get(socketId)
          if (ws === undefined) return Effect.fail(new LiveSessionError({ reason: "guest", message: "no such socket" }))
          const send = () => ws.send(message.text ? Buffer.from(message.data).toString("utf8") : message.data)
          if (ws.readyState === WebSocket.OPEN) return Effect.sync(send)
          return Effect.callback<void>((resume) => void ws.once("open", () => resume(Effect.sync(send))))
        }),
      OpenShell: ({ sessionId }) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "fake node" })),
      ShellInput: () => Effect.fail(new LiveSessionError({ reason: "guest", message: "fake node" })),
    })
    const client = yield* RpcTest.makeClient(NodeRpcs).pipe(Effect.provide(handlers as Layer.Layer<any>))
    yield* registry.register({ info, client: client as never }).pipe(Effect.orDie)
    return node
  })
