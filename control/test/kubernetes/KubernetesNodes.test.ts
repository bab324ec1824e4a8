import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Fiber, Layer, Redacted, References, Stream } from "effect"
import * as fs from "node:fs/promises"
import * as https from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import { WebSocketServer } from "ws"
import { makeCertificateAuthority } from "../../../proxy/src/CertificateAuthority.ts"
import { NodeConfig } from "../../../node/src/NodeConfig.ts"
import { NodeServer } from "../../../node/src/NodeServer.ts"
import { LiveSessions } from "../../../node/src/session/LiveSessions.ts"
import { call, pgliteBackend, startControl, TestDatabase } from "../harness.ts"
import { KubernetesNodes, podRpcUrl } from "../../src/KubernetesNodes.ts"
import { type PodChange, watchPods } from "../../src/kubernetes/PodWatcher.ts"
import { NodeRegistry } from "../../src/NodeRegistry.ts"
import { QueueSignal } from "../../src/QueueSignal.ts"
import { type ExchangeStep, podWatchExchange } from "./pod-watch-exchange.ts"

interface Seen {
  readonly path: string
  readonly query: URLSearchParams
  readonly authorization: string | undefined
}

/**
 * Replays the exchange (see pod-watch-exchange.ts: hand-written in the API's wire format, not
 * captured from a cluster) over HTTPS with a throwaway CA, one step per request, and records
 * each request. `held` resolves when the last (held-open) watch is reached.
 */
const replayApi = (steps: ReadonlyArray<ExchangeStep>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const ca = await makeCertificateAuthority()
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), "paws-k8s-sa-"))
      await fs.writeFile(path.join(dir, "token"), "recorded-sa-token\n")
      await fs.writeFile(path.join(dir, "ca.crt"), ca.certificatePem)
      await fs.writeFile(path.join(dir, "namespace"), "paws\n")
      const seen: Array<Seen> = []
      const mismatches: Array<string> = []
      const held = Promise.withResolvers<void>()
      const open = new Set<import("node:http").ServerResponse>()
      const server = https.createServer({ key: ca.leafKeyPem, cert: await ca.issueLeaf("localhost") }, (req, res) => {
        const url = new URL(req.url ?? "/", "https://localhost")
        const step = steps[seen.length]
        seen.push({ path: url.pathname, query: url.searchParams, authorization: req.headers.authorization })
        if (step === undefined) return void res.writeHead(500).end()
        const watch = url.searchParams.get("watch") === "1"
        if (
          watch !== step.expect.watch ||
          url.searchParams.get("resourceVersion") !== (step.expect.resourceVersion ?? null)
        ) {
          mismatches.push(`request ${seen.length}: ${req.url}`)
        }
        res.writeHead(step.status, { "content-type": "application/json" })
        if (step.body !== undefined) return void res.end(JSON.stringify(step.body))
        for (const line of step.lines ?? []) res.write(JSON.stringify(line) + "\n")
        if (step.hold === true) {
          open.add(res)
          held.resolve()
        } else res.end()
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const port = (server.address() as { port: number }).port
      return { url: `https://localhost:${port}`, dir, seen, mismatches, held: held.promise, server, open }
    }),
    (api) =>
      Effect.promise(async () => {
        for (const res of api.open) res.destroy()
        api.server.closeAllConnections()
        await new Promise<void>((resolve) => api.server.close(() => resolve()))
        await fs.rm(api.dir, { recursive: true, force: true })
      }),
  )

/** A stand-in node that only accepts the WebSocket: it records dials and whether one is open now. */
const fakeNode = () =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
      await new Promise<void>((resolve) => wss.on("listening", resolve))
      const dials: Array<string | undefined> = []
      let openNow = 0
      const changed = new Set<() => void>()
      wss.on("connection", (socket, req) => {
        dials.push(req.headers.authorization)
        openNow++
        changed.forEach((f) => f())
        socket.on("close", () => {
          openNow--
          changed.forEach((f) => f())
        })
      })
      const until = (test: () => boolean) =>
        new Promise<void>((resolve) => {
          const check = () => test() && (changed.delete(check), resolve())
          changed.add(check)
          check()
        })
      return { port: (wss.address() as { port: number }).port, dials, open: () => openNow, until, wss }
    }),
    (n) => Effect.promise(() => new Promise<void>((resolve) => n.wss.close(() => resolve()))),
  )

const quiet = Layer.succeed(References.MinimumLogLevel, "Error")

describe("Kubernetes pod discovery (replayed API exchange, hand-written in the API's wire format)", () => {
  it.live("lists, watches added/modified/deleted, resumes from the bookmark, relists after 410 Gone (event or status)", () =>
    Effect.gen(function* () {
      const exchange = podWatchExchange({ a: 1, b: 2, c: 3 })
      const api = yield* replayApi(exchange.steps)
      const changes: Array<PodChange> = []
      const relisted = yield* Deferred.make<void>()
      const fiber = yield* watchPods(
        { url: api.url, serviceAccountDir: api.dir },
        exchange.namespace,
        exchange.selector,
        (c) =>
          Effect.suspend(() => {
            changes.push(c)
            const lists = changes.filter((x) => x._tag === "Listed").length
            return lists === 3 ? Deferred.succeed(relisted, undefined) : Effect.void
          }),
      ).pipe(Effect.forkScoped)
      yield* Deferred.await(relisted)
      yield* Effect.promise(() => api.held)
      const summary = changes.map((c) =>
        c._tag === "Listed"
          ? `list ${c.pods.map((p) => `${p.name}:${p.ready ? "ready" : "not-ready"}:${p.rpcPort}`).join(",")}`
          : c._tag === "Upserted"
          ? `upsert ${c.pod.name}:${c.pod.ready ? "ready" : "not-ready"}`
          : `delete ${c.name}`
      )
      assert.deepStrictEqual(summary, [
        "list node-a:ready:1,node-b:not-ready:2",
        "upsert node-c:ready",
        "upsert node-b:ready",
        "upsert node-a:not-ready",
        "delete node-b",
        "list node-a:ready:1",
        "list node-a:ready:1",
      ])
      assert.deepStrictEqual(api.mismatches, [])
      assert.strictEqual(api.seen.length, 7)
      for (const s of api.seen) {
        assert.strictEqual(s.path, "/api/v1/namespaces/paws/pods")
        assert.strictEqual(s.query.get("labelSelector"), "app.kubernetes.io/name=paws-node")
        assert.strictEqual(s.authorization, "Bearer recorded-sa-token")
      }
      assert.deepStrictEqual(api.seen.map((s) => s.query.get("resourceVersion")), [
        null,
        "100",
        "105",
        null,
        "200",
        null,
        "300",
      ])
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  it.live("control dials ready node pods with the node token and closes links to pods that go away", () =>
    Effect.gen(function* () {
      const [a, b, c] = [yield* fakeNode(), yield* fakeNode(), yield* fakeNode()]
      const exchange = podWatchExchange({ a: a.port, b: b.port, c: c.port })
      const api = yield* replayApi(exchange.steps)
      const config = ConfigProvider.layer(ConfigProvider.fromUnknown({
        PAWS_KUBERNETES_NODE_PODS: exchange.selector,
        PAWS_KUBERNETES_API: api.url,
        PAWS_KUBERNETES_SERVICE_ACCOUNT_DIR: api.dir,
        PAWS_NODES_TOKEN: "shared-node-token",
      }))
      yield* Layer.build(
        KubernetesNodes.pipe(
          Layer.provide(NodeRegistry.layer),
          Layer.provide(QueueSignal.layer),
          Layer.provide(config),
        ),
      )
      yield* Effect.promise(() => api.held)
      // After the relist only node-a is wanted: b was deleted, c vanished between the watches.
      yield* Effect.promise(() =>
        Promise.all([a.until(() => a.open() === 1), b.until(() => b.open() === 0), c.until(() => c.open() === 0)])
      )
      assert.deepStrictEqual(a.dials, ["Bearer shared-node-token", "Bearer shared-node-token"]) // listed, not ready, relisted
      assert.deepStrictEqual(b.dials, ["Bearer shared-node-token"]) // once ready, until deleted
      assert.deepStrictEqual(c.dials, ["Bearer shared-node-token"]) // added, gone at the relist
    }).pipe(Effect.scoped, Effect.provide(quiet)))

  it.live("a real control plane registers the node behind a discovered pod (real NodeServer, no VMs)", () =>
    Effect.gen(function* () {
      const [b, c] = [yield* fakeNode(), yield* fakeNode()]
      // node-a is a real paws node RPC server (sessions stubbed out: this is about discovery).
      const portA = yield* Effect.promise(async () => {
        const probe = new WebSocketServer({ host: "127.0.0.1", port: 0 })
        await new Promise<void>((resolve) => probe.on("listening", resolve))
        const port = (probe.address() as { port: number }).port
        await new Promise<void>((resolve) => probe.close(() => resolve()))
        return port
      })
      yield* Layer.build(
        NodeServer.pipe(
          Layer.provide(Layer.succeed(
            LiveSessions,
            LiveSessions.of(
              {
                run: () => Stream.empty,
                cancel: () => Effect.void,
                ids: Effect.sync(() => new Set<string>()),
                capacity: Effect.succeed({ maxConcurrent: 2, running: 0, basis: "2 VMs: set by the test" }),
                pausedIds: Effect.succeed([]),
              } as unknown as LiveSessions["Service"],
            ),
          )),
          Layer.provide(NodeConfig.layerWith({
            id: "kvm-node-a",
            host: "127.0.0.1",
            port: portA,
            token: Redacted.make("shared-node-token"),
          })),
        ),
      )
      const exchange = podWatchExchange({ a: portA, b: b.port, c: c.port })
      const api = yield* replayApi(exchange.steps)
      const control = yield* startControl(yield* (yield* TestDatabase).fresh, {
        PAWS_KUBERNETES_NODE_PODS: exchange.selector,
        PAWS_KUBERNETES_API: api.url,
        PAWS_KUBERNETES_SERVICE_ACCOUNT_DIR: api.dir,
        PAWS_NODES_TOKEN: "shared-node-token",
      })
      yield* Effect.promise(() => api.held)
      while (true) {
        const nodes = (yield* call(control, "GET", "/v1/nodes")).body as Array<{ id: string; status: string }>
        if (nodes.some((n) => n.id === "kvm-node-a" && n.status === "ready")) break
        yield* Effect.sleep(50)
      }
      assert.isAtLeast(api.seen.length, 7)
    }).pipe(Effect.scoped, Effect.provide(pgliteBackend), Effect.provide(quiet)))

  it("a pod is dialled only when ready with an IP, on its rpc port or the default one", () => {
    const pod = { name: "n", ip: "10.1.2.3", ready: true, rpcPort: undefined }
    assert.strictEqual(podRpcUrl(pod, 7711), "ws://10.1.2.3:7711/rpc")
    assert.strictEqual(podRpcUrl({ ...pod, rpcPort: 9000, ip: "fd00::5" }, 7711), "ws://[fd00::5]:9000/rpc")
    assert.strictEqual(podRpcUrl({ ...pod, ready: false }, 7711), undefined)
    assert.strictEqual(podRpcUrl({ ...pod, ip: undefined }, 7711), undefined)
  })
})
