// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import {
  type NodeId,
  type NodeInfo,
  NodeRpcs,
  NodeSessionNotFound,
  type SessionDispatch,
  type SessionEvent,
} from "@paws/core"
import { Deferred, Effect, Layer, type Scope, Stream } from "effect"
import { RpcTest } from "effect/rpc"
import type { NodeRegistry } from "../src/NodeRegistry.ts"

export interface FakeNode {
  readonly info: NodeInfo
  /** Every dispatch received, with decrypted credentials, in arrival order. */
  readonly dispatched: Array<SessionDispatch>
  readonly cancelled: Array<string>
}

const now = () => new Date().toISOString()

/**
 * An in-process node speaking the real NodeRpcs contract (through RpcTest, i.e. the real
 * RPC client and server with serialization bypassed). The workload script selects behaviour:
 * `hang` runs until CancelSession; `crash` dies after starting to run (node lost); `vanish` dies before the VM starts; `slow`
 * spaces events 100 ms apart; anything else completes with output, an audit event and a result.
 */
export const registerFakeNode = (
  registry: NodeRegistry["Service"],
  options: { readonly id: string; readonly maxConcurrent: number; readonly stallOn?: string },
): Effect.Effect<FakeNode, never, Scope.Scope> =>
  Effect.gen(function* () {
    const info: NodeInfo = {
      id: options.id as NodeId,
      name: options.id,
      capacity: { maxConcurrent: options.maxConcurrent, running: 0, available: options.maxConcurrent },
      status: "ready",
      labels: { fake: "true" },
    }
    const node: FakeNode = { info, dispatched: [], cancelled: [] }
    const cancels = new Map<string, Deferred.Deferred<void>>()

    const run = (d: SessionDispatch): Stream.Stream<SessionEvent> => {
      node.dispatched.push(d)
      const script = d.workload.script
      const gap = script.includes("slow") ? 100 : 5
      const paced = (events: ReadonlyArray<SessionEvent>) =>
        Stream.fromIterable(events).pipe(Stream.tap(() => Effect.sleep(gap)))
      const start = paced([
        { _tag: "status", status: "starting", at: now() },
        { _tag: "status", status: "running", at: now() },
      ])
      if (options.stallOn !== undefined && script.includes(options.stallOn)) {
        return Stream.never // accepted but never reports back: the session stays "starting"
      }
      if (script.includes("hang")) {
        const cancelled = Deferred.makeUnsafe<void>()
        cancels.set(d.sessionId, cancelled)
        return Stream.concat(
          start,
          Stream.fromEffect(Deferred.await(cancelled)).pipe(
            Stream.map((): SessionEvent => ({ _tag: "status", status: "cancelled", at: now(), reason: "cancelled" })),
          ),
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
      CancelSession: ({ sessionId }) =>
        Effect.gen(function* () {
          node.cancelled.push(sessionId)
          const d = cancels.get(sessionId)
          if (d === undefined) {
            return yield* new NodeSessionNotFound({ sessionId, message: "not running here" })
          }
          yield* Deferred.succeed(d, undefined)
        }),
      NodeStatus: () => Effect.succeed(info),
    })
    const client = yield* RpcTest.makeClient(NodeRpcs).pipe(Effect.provide(handlers as Layer.Layer<any>))
    yield* registry.register({ info, client: client as never })
    return node
  })
