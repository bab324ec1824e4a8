// deno-lint-ignore-file no-explicit-any -- the fuzzer builds and reads loosely typed RPC envelopes
import { afterAll, assert, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { HttpServer } from "effect/http"
import { NodeHttpServer } from "@effect/platform-node"
import fc from "fast-check"
import { newSessionId, type SessionDispatch, UnknownSnapshot, workloadText } from "@paws/core"
import { createServer } from "node:http"
import type { GuestImage } from "../src/image/GuestImage.ts"
import { ImageStore } from "../src/image/ImageStore.ts"
import { NodeConfig } from "../src/NodeConfig.ts"
import { NodeRpcRoutes } from "../src/NodeServer.ts"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { SessionRunner } from "../src/session/SessionRunner.ts"
import { nodeClient } from "./support/NodeClient.ts"
import { openRawRpc, requestLine } from "./support/FuzzRpc.ts"

const token = "node-fuzz-token-0123456789"
const runs: Record<string, number> = {}
afterAll(() => {
  const total = Object.values(runs).reduce((a, b) => a + b, 0)
  console.log(`fuzz-rpc: ${JSON.stringify(runs)} total=${total}`)
})
const count = (name: string) => (runs[name] = (runs[name] ?? 0) + 1)

/** Scripts the runner double was asked to run: an invalid dispatch must never appear here. */
const ran = new Set<string>()
const RecordingRunner = Layer.succeed(
  SessionRunner,
  SessionRunner.of({
    run: (dispatch, emit) =>
      Effect.sync(() => {
        ran.add(workloadText(dispatch.workload).text)
        emit({ _tag: "status", status: "completed", at: new Date().toISOString() })
      }),
  }),
)

const Images = Layer.succeed(
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

const TestServer = NodeRpcRoutes.pipe(
  Layer.provide(LiveSessions.layer),
  Layer.provide([RecordingRunner, Images]),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
  Layer.provide(NodeConfig.layerWith({ token: Redacted.make(token), maxVms: 2, netns: Option.none() })),
)

const wsUrl = Effect.map(HttpServer.HttpServer, (s) => `ws://127.0.0.1:${(s.address as { port: number }).port}/rpc`)

const dispatch = (script: string): SessionDispatch => ({
  sessionId: newSessionId(),
  snapshot: "default",
  workload: { type: "script", script },
  resources: { vcpus: 1, memoryMB: 128 },
  timeoutMs: 10_000,
  network: { allowOut: ["api.example.com"], credentials: { "api.example.com": { headers: { "x-api-key": "k" } } } },
})

/** Changes that make a dispatch invalid, each by construction. */
const breakage = fc.oneof(
  fc.record({
    field: fc.constant("sessionId"),
    value: fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.constant(null), fc.uuid({ version: 4 })),
  }),
  fc.record({
    field: fc.constant("timeoutMs"),
    value: fc.oneof(
      fc.integer({ max: 0 }),
      fc.double({ noInteger: true }),
      fc.constantFrom("1000", null, 2 ** 53, 25 * 60 * 60 * 1000),
    ),
  }),
  fc.record({
    field: fc.constant("allowOut"),
    value: fc.constantFrom("", "*", "*.com", "10.0.0.1", "a:1", "http://a.b", "a..b.com", "-a.b.com", "a.*.b.com"),
  }),
  fc.record({
    field: fc.constant("credentialHost"),
    value: fc.constantFrom("", "*", "*.com", "169.254.169.254", "a b.com", "x.com/y"),
  }),
  fc.record({
    field: fc.constant("headerValue"),
    value: fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom("\r\n", "\n", "\r", "\u0000", "\r\nX-Injected: 1"))
      .map(([s, bad]) => `${s}${bad}${s}`),
  }),
  fc.record({ field: fc.constant("headerName"), value: fc.constantFrom("", "bad name", "a:b", "x\r\ny", "é") }),
  fc.record({ field: fc.constant("snapshot"), value: fc.constantFrom("", "../etc", "A", "a/b", "x".repeat(65)) }),
  fc.record({
    field: fc.constant("resources"),
    value: fc.constantFrom({ vcpus: 0, memoryMB: 128 }, { vcpus: 1, memoryMB: 1 }, { vcpus: -1 }, "big", null),
  }),
  fc.record({ field: fc.constant("workload"), value: fc.jsonValue({ maxDepth: 2 }) }),
  // A daemon's /input: only plain file names, a bounded total, a lower-case trigger kind.
  fc.record({
    field: fc.constant("input"),
    value: fc.oneof(
      fc.constantFrom("../etc/passwd", "a/b", "", ".hidden", "x".repeat(65), "a b", "/abs").map((name) => ({
        files: { [name]: "{}" },
      })),
      fc.constant({ files: { "event.json": "x".repeat(1024 * 1024 + 1) } }),
      fc.constantFrom("Webhook", "a b", "", "x".repeat(33)).map((trigger) => ({ files: {}, trigger })),
      // Anything but an object with `files` (which could be a valid input by chance).
      fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== "object" || v === null || !("files" in v)),
    ),
  }),
)

const broken = (script: string, { field, value }: { field: string; value: unknown }): unknown => {
  const d = structuredClone(dispatch(script)) as Record<string, any>
  switch (field) {
    case "allowOut":
      d.network.allowOut = ["api.example.com", value]
      break
    case "credentialHost":
      d.network.credentials = { [String(value)]: { headers: { "x-api-key": "k" } } }
      break
    case "headerValue":
      d.network.credentials["api.example.com"].headers["x-api-key"] = value
      break
    case "headerName":
      d.network.credentials["api.example.com"].headers = { [String(value)]: "v" }
      break
    case "workload":
      d.workload = value // no JSON value of depth 2 is a valid workload but { type: "script", script }
      break
    default:
      d[field] = value
  }
  return d
}

layer(TestServer, { excludeTestServices: true, timeout: 120_000 })("fuzz: node RPC", (it) => {
  it.effect("garbage frames: the server never crashes and answers NodeStatus afterwards", () =>
    Effect.gen(function* () {
      const url = yield* wsUrl
      const frame = fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) + "\n"),
        fc.constantFrom(
          "\n",
          "{}\n",
          '{"_tag":"Request"}\n',
          '{"_tag":"Request","id":"1","tag":"Nope","payload":{},"headers":[]}\n',
          '{"_tag":"Request","id":"x","tag":"NodeStatus","payload":{},"headers":[]}\n',
          '{"_tag":"Request","id":"-1","tag":"NodeStatus","payload":{},"headers":{"a":1}}\n',
          '{"_tag":"Ack","requestId":"999"}\n',
          '{"_tag":"Interrupt","requestId":"abc"}\n',
          '{"_tag":"Eof"}\n',
          '{"_tag":"Ping"}\n',
          '{"__proto__":{"polluted":1},"_tag":"Request","id":"2","tag":"NodeStatus","payload":{},"headers":[]}\n',
          "[".repeat(100_000) + "\n",
        ),
        fc.record({
          _tag: fc.constantFrom("Request", "Ack", "Interrupt", "Eof", "Ping", "Chunk", "Exit"),
          id: fc.jsonValue({ maxDepth: 0 }),
          requestId: fc.jsonValue({ maxDepth: 0 }),
          tag: fc.constantFrom("NodeStatus", "RunSession", "CancelSession", "constructor", "__proto__"),
          payload: fc.jsonValue({ maxDepth: 2 }),
          headers: fc.jsonValue({ maxDepth: 1 }),
        }, { requiredKeys: ["_tag"] })
          .map((m) => JSON.stringify(m) + "\n"),
      )
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), async (frames) => {
            count("garbageFrames")
            const rpc = await openRawRpc(url, token)
            try {
              for (const f of frames) rpc.send(f)
              // A newline first: a half line of garbage must not swallow the probe.
              rpc.send("\n" + requestLine("900000001", "NodeStatus", null))
              // The verdict on the probe, or a Defect: the server refuses to read more of a connection
              // that sent a line it cannot parse (the client is expected to reconnect).
              const reply = await rpc.waitFor((m) =>
                (m["_tag"] === "Exit" && m["requestId"] === "900000001") || m["_tag"] === "Defect"
              )
              if (reply !== "closed" && reply["_tag"] === "Exit") {
                const exit = reply["exit"] as { _tag: string; value?: { status?: string } }
                assert.strictEqual(exit._tag, "Success", JSON.stringify(reply))
                assert.strictEqual(exit.value?.status, "ready")
              }
            } finally {
              rpc.close()
            }
          }),
          { numRuns: 600 },
        )
      )
      const status = yield* Effect.scoped(Effect.flatMap(nodeClient(url, token), (c) => c.NodeStatus()))
      assert.strictEqual(status.status, "ready")
    }))

  it.effect("mutated SessionDispatch payloads are rejected and never run", () =>
    Effect.gen(function* () {
      const url = yield* wsUrl
      const rpc = yield* Effect.promise(() => openRawRpc(url, token))
      let n = 0
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(breakage, async (b) => {
            count("brokenDispatches")
            const script = `fuzz-${++n}`
            const id = String(n)
            rpc.send(requestLine(id, "RunSession", broken(script, b)))
            // A Chunk means it ran (and waits for an Ack); an Exit is the verdict.
            const reply = await rpc.waitFor((m) =>
              (m["_tag"] === "Exit" || m["_tag"] === "Chunk") && m["requestId"] === id
            )
            assert.notStrictEqual(reply, "closed", "the server closed the connection")
            assert.strictEqual((reply as Record<string, any>)["_tag"], "Exit", `${JSON.stringify(b)} ran`)
            const exit = (reply as Record<string, any>)["exit"]
            assert.strictEqual(exit._tag, "Failure", `${JSON.stringify(b)} was accepted: ${JSON.stringify(reply)}`)
            assert.isFalse(ran.has(script), `${JSON.stringify(b)} was run`)
          }),
          { numRuns: 800 },
        )
      )
      // The same connection still runs a valid dispatch, and a fresh client gets NodeStatus.
      rpc.send(requestLine("999999999", "RunSession", dispatch("fuzz-valid")))
      yield* Effect.promise(() => rpc.waitFor((m) => m["_tag"] === "Chunk" && m["requestId"] === "999999999"))
      rpc.send(JSON.stringify({ _tag: "Ack", requestId: "999999999" }) + "\n")
      const done = yield* Effect.promise(() =>
        rpc.waitFor((m) => m["_tag"] === "Exit" && m["requestId"] === "999999999")
      )
      assert.strictEqual((done as Record<string, any>)["exit"]._tag, "Success", JSON.stringify(done))
      assert.isTrue(ran.has("fuzz-valid"))
      rpc.close()
      const status = yield* Effect.scoped(Effect.flatMap(nodeClient(url, token), (c) => c.NodeStatus()))
      assert.deepStrictEqual(status.capacity, {
        maxConcurrent: 2,
        running: 0,
        available: 2,
        basis: "PAWS_NODE_MAX_VMS=2",
      })
    }))
})
