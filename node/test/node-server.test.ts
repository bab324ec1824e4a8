import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { HttpServer } from "effect/http"
import { NodeHttpServer } from "@effect/platform-node"
import { newSessionId, type NodeSessionEvent, type SessionDispatch, UnknownSnapshot, workloadText } from "@paws/core"
import type { GuestImage } from "../src/image/GuestImage.ts"
import { ImageStore } from "../src/image/ImageStore.ts"
import { createServer } from "node:http"
import { NodeConfig } from "../src/NodeConfig.ts"
import { NodeRpcRoutes } from "../src/NodeServer.ts"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { SessionRunner } from "../src/session/SessionRunner.ts"
import { nodeClient } from "./support/NodeClient.ts"

const token = "node-test-token-0123456789"

/** A runner double: emits a short session, or waits for cancel when the script says `wait`. */
const FakeRunner = Layer.succeed(
  SessionRunner,
  SessionRunner.of({
    run: (dispatch, emit, cancel) =>
      Effect.gen(function* () {
        const at = new Date().toISOString()
        emit({ _tag: "status", status: "starting", at })
        emit({ _tag: "status", status: "running", at })
        if (workloadText(dispatch.workload).text === "wait") {
          yield* Deferred.await(cancel)
          emit({ _tag: "status", status: "cancelled", at })
          return
        }
        emit({ _tag: "output", stream: "stdout", data: "hello\n" })
        emit({ _tag: "status", status: "completed", at })
      }),
  }),
)

const dispatch = (script: string): SessionDispatch => ({
  sessionId: newSessionId(),
  snapshot: "default",
  workload: { type: "script", script },
  resources: { vcpus: 1, memoryMB: 128 },
  timeoutMs: 10_000,
  network: { allowOut: [], credentials: {} },
})

/** Only "default" exists. */
const FakeImages = Layer.succeed(
  ImageStore,
  ImageStore.of({
    dir: "/nonexistent",
    names: Effect.succeed(["default"]),
    get: (name = "default") =>
      name === "default"
        ? Effect.succeed({} as GuestImage)
        : Effect.fail(new UnknownSnapshot({ snapshot: name, message: `no image ${name}` })),
  }),
)

const serverWith = (nodeToken: string) =>
  NodeRpcRoutes.pipe(
    Layer.provide(LiveSessions.layer),
    Layer.provide([FakeRunner, FakeImages]),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provide(NodeConfig.layerWith({ token: Redacted.make(nodeToken), maxVms: 1, netns: Option.none() })),
  )
const TestServer = serverWith(token)

const urls = Effect.map(HttpServer.HttpServer, (s) => {
  const port = (s.address as { port: number }).port
  return { ws: `ws://127.0.0.1:${port}/rpc`, http: `http://127.0.0.1:${port}/rpc` }
})

layer(TestServer, { excludeTestServices: true })("NodeServer", (it) => {
  it.effect("refuses requests without the bearer token", () =>
    Effect.gen(function* () {
      const { http, ws } = yield* urls
      const none = yield* Effect.promise(() => fetch(http))
      assert.strictEqual(none.status, 401)
      const wrong = yield* Effect.promise(() => fetch(http, { headers: { authorization: "Bearer nope" } }))
      assert.strictEqual(wrong.status, 401)
      const status = yield* Effect.scoped(
        Effect.flatMap(nodeClient(ws, "wrong-token"), (c) => c.NodeStatus()),
      ).pipe(Effect.timeout("2 seconds"), Effect.exit)
      assert.isTrue(Exit.isFailure(status))
    }))

  it.effect("reports capacity, streams a session's events, refuses past capacity, cancels", () =>
    Effect.scoped(Effect.gen(function* () {
      const { ws } = yield* urls
      const client = yield* nodeClient(ws, token)
      const idle = yield* client.NodeStatus().pipe(Effect.timeout("3 seconds"))
      assert.deepStrictEqual(idle.capacity, {
        maxConcurrent: 1,
        running: 0,
        available: 1,
        basis: "PAWS_NODE_MAX_VMS=1",
      })

      const events = yield* Stream.runCollect(client.RunSession(dispatch("echo hello"))).pipe(
        Effect.timeout("3 seconds"),
      )
      assert.deepStrictEqual(
        Array.from(events, (e: NodeSessionEvent) => e._tag === "status" ? e.status : e._tag),
        ["starting", "running", "output", "completed"],
      )

      const long = dispatch("wait")
      const seen: Array<NodeSessionEvent> = []
      const started = yield* Deferred.make<void>()
      const fiber = yield* client.RunSession(long).pipe(
        Stream.runForEach((e) =>
          Effect.sync(() => seen.push(e)).pipe(Effect.andThen(Deferred.succeed(started, undefined)))
        ),
        Effect.forkChild,
      )
      yield* Deferred.await(started)
      assert.strictEqual((yield* client.NodeStatus()).capacity.running, 1)
      const refused = yield* Stream.runCollect(client.RunSession(dispatch("echo no"))).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "NodeAtCapacity")
      const unknown = yield* Stream.runCollect(client.RunSession({ ...dispatch("echo"), snapshot: "nope" })).pipe(
        Effect.flip,
      )
      assert.strictEqual(unknown._tag, "UnknownSnapshot")
      const missing = yield* client.CancelSession({ sessionId: newSessionId() }).pipe(Effect.flip)
      assert.strictEqual(missing._tag, "NodeSessionNotFound")
      yield* client.CancelSession({ sessionId: long.sessionId })
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(seen.at(-1), {
        _tag: "status",
        status: "cancelled",
        at: (seen.at(-1) as { at: string }).at,
      })
      assert.strictEqual((yield* client.NodeStatus()).capacity.running, 0)
      // A cancel that overtook its session's dispatch: the dispatch arriving after it is refused, not run.
      const overtaken = dispatch("echo too late")
      yield* client.CancelSession({ sessionId: overtaken.sessionId }).pipe(Effect.flip)
      const late = yield* Stream.runCollect(client.RunSession(overtaken)).pipe(Effect.flip)
      assert.strictEqual(late._tag, "NodeSessionNotFound")
    })))
})

layer(serverWith(""), { excludeTestServices: true })("NodeServer with an empty token", (it) => {
  it.effect("authorizes nobody: no header and an empty bearer are both 401", () =>
    Effect.gen(function* () {
      const { http } = yield* urls
      assert.strictEqual((yield* Effect.promise(() => fetch(http))).status, 401)
      const empty = yield* Effect.promise(() => fetch(http, { headers: { authorization: "Bearer " } }))
      assert.strictEqual(empty.status, 401)
    }))
})
