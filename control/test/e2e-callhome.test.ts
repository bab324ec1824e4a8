// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import {
  LiveSessionError,
  NodeAtCapacity,
  NodeSessionNotFound,
  type SessionDispatch,
  type SessionEvent,
} from "@paws/core"
import { Deferred, Effect, Layer, Option, Redacted, Stream } from "effect"
import { request } from "node:http"
import { createServer } from "node:net"
import { CallHome } from "../../node/src/CallHome.ts"
import { NodeConfig } from "../../node/src/NodeConfig.ts"
import { NodeServer } from "../../node/src/NodeServer.ts"
import { LiveSessions } from "../../node/src/session/LiveSessions.ts"
import { call, pgliteBackend, script, startControl, TestControl, TestDatabase, waitForSession } from "./harness.ts"

const now = () => new Date().toISOString()

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

/**
 * The real call-home path (node's CallHome SocketServer + RpcServer, control's NodeGateway +
 * NodeLink) with a session double instead of VMs: `hang` runs until cancelled.
 */
const fakeSessions = (maxConcurrent = 3) =>
  Layer.sync(LiveSessions, () => {
    const live = new Map<string, Deferred.Deferred<void>>()
    return LiveSessions.of({
      decideEgress: () => Effect.succeed(false),
      attach: (sessionId) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "not held" })),
      shutdown: () => Effect.void,
      run: (d: SessionDispatch) =>
        Stream.unwrap(Effect.sync(() => {
          const cancel = Deferred.makeUnsafe<void>()
          live.set(d.sessionId, cancel)
          const start: Array<SessionEvent> = [
            { _tag: "status", status: "starting", at: now() },
            { _tag: "status", status: "running", at: now() },
          ]
          return Stream.concat(
            Stream.fromIterable(start),
            Stream.fromEffect(Deferred.await(cancel)).pipe(
              Stream.map((): SessionEvent => ({ _tag: "status", status: "cancelled", at: now() })),
            ),
          ).pipe(Stream.ensuring(Effect.sync(() => live.delete(d.sessionId))))
        })) as Stream.Stream<SessionEvent, NodeAtCapacity>,
      cancel: (id) => Effect.suspend(() => Deferred.succeed(live.get(id)!, undefined)).pipe(Effect.asVoid),
      ids: Effect.sync(() => new Set(live.keys())),
      pause: (sessionId) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      pausedIds: Effect.succeed([]),
      capacity: Effect.sync(() => ({ maxConcurrent, running: live.size, basis: `PAWS_NODE_MAX_VMS=${maxConcurrent}` })),
      exec: (sessionId) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      readFile: (sessionId) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      writeFile: (sessionId) => Effect.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      forward: (sessionId) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      openSocket: (sessionId) =>
        Stream.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      sendSocket: () => Effect.fail(new LiveSessionError({ reason: "guest", message: "no guest in this double" })),
      openShell: (sessionId) => Stream.fail(new NodeSessionNotFound({ sessionId, message: "no guest in this double" })),
      shellInput: () => Effect.fail(new LiveSessionError({ reason: "guest", message: "no guest in this double" })),
    })
  })

const callHomeNode = (url: string, token: string, id: string, maxConcurrent = 3) =>
  Layer.build(
    CallHome.pipe(
      Layer.provide(fakeSessions(maxConcurrent)),
      Layer.provide(NodeConfig.layerWith({
        id,
        token: Redacted.make(token),
        controlUrl: Option.some(url),
        serveRpc: false,
        lostAfterMs: 2_000,
      })),
    ),
  )

/** A WebSocket upgrade request by hand: the status line tells whether control upgraded. */
const upgradeStatus = (url: string, headers: Record<string, string>) =>
  Effect.callback<number>((resume) => {
    const req = request(`${url}/v1/nodes/connect`, {
      agent: false, // a refused upgrade closes its connection: never reuse one
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64"),
        ...headers,
      },
    })
    req.on("upgrade", (res, socket) => {
      socket.destroy()
      resume(Effect.succeed(res.statusCode ?? 0))
    })
    req.on("response", (res) => {
      res.resume()
      resume(Effect.succeed(res.statusCode ?? 0))
    })
    req.end()
  })

const nodesOf = (control: any) =>
  Effect.map(call(control, "GET", "/v1/nodes"), (r) => r.body.map((n: any) => n.id) as Array<string>)

const waitFor = <A>(what: string, effect: Effect.Effect<A>, ok: (a: A) => boolean, ms = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (true) {
      const a = yield* effect
      if (ok(a)) return a
      if (Date.now() > deadline) return yield* Effect.die(new Error(`${what}: last ${JSON.stringify(a)}`))
      yield* Effect.sleep(50)
    }
  })

describe("node call-home", () => {
  layer(
    TestControl.layer({
      PAWS_NODE_HEARTBEAT_MS: "200",
      PAWS_NODE_LOST_AFTER_MS: "1500",
      PAWS_NODE_MAX_CONCURRENT: "5",
    }).pipe(
      Layer.provide(pgliteBackend),
    ),
    { excludeTestServices: true, timeout: 120_000 },
  )((it) => {
    it.effect("node tokens: created once, listed without secrets, revoked; non-admin keys refused", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const created = yield* call(control, "POST", "/v1/nodes/tokens", { body: { name: "rack-1" } })
        assert.strictEqual(created.status, 201, created.text)
        assert.match(created.body.token, /^pawsn_[a-z0-9]{12}_/)
        const listed = yield* call(control, "GET", "/v1/nodes/tokens")
        assert.include(listed.body.map((t: any) => t.id), created.body.id)
        assert.notInclude(listed.text, created.body.token.slice(-43)) // the secret may itself contain "_"
        const reader = yield* call(control, "POST", "/v1/keys", { body: { name: "r", scopes: ["read"] } })
        const forbidden = yield* call(control, "GET", "/v1/nodes/tokens", { key: reader.body.secret })
        assert.strictEqual(forbidden.status, 403)
        const revoked = yield* call(control, "DELETE", `/v1/nodes/tokens/${created.body.id}`)
        assert.strictEqual(revoked.status, 200)
        assert.isString(revoked.body.revokedAt)
        const missing = yield* call(control, "DELETE", "/v1/nodes/tokens/aaaaaaaaaaaa")
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(missing.body._tag, "NodeTokenNotFound")
        // Revoked, wrong and absent tokens: a plain 401 before any upgrade.
        const id = { "x-paws-node-id": "n-refused" }
        assert.strictEqual(
          yield* upgradeStatus(control.url, { ...id, authorization: `Bearer ${created.body.token}` }),
          401,
        )
        assert.strictEqual(yield* upgradeStatus(control.url, { ...id, authorization: "Bearer pawsn_x" }), 401)
        assert.strictEqual(yield* upgradeStatus(control.url, id), 401)
        // An API key is not a node token.
        assert.strictEqual(
          yield* upgradeStatus(control.url, { ...id, authorization: `Bearer ${control.adminKey}` }),
          401,
        )
      }))

    it.effect("a node calls home, runs and cancels a session, is lost with its sessions, and a revoke cuts it off", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const token = (yield* call(control, "POST", "/v1/nodes/tokens", { body: { name: "n-home" } })).body
        const good = { authorization: `Bearer ${token.token}` }
        assert.strictEqual(yield* upgradeStatus(control.url, good), 400, "a node id is required")

        const node = yield* Effect.scoped(Effect.gen(function* () {
          yield* callHomeNode(control.url, token.token, "n-home")
          const listed = yield* waitFor("registered", call(control, "GET", "/v1/nodes"), (r) => r.body.length === 1)
          assert.deepInclude(listed.body[0], { id: "n-home", status: "ready" })
          assert.strictEqual(listed.body[0].capacity.maxConcurrent, 3)

          // Cancel: the node is asked, and the session is cancelled once it confirms.
          const a = (yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId
          yield* waitForSession(control, a, (s) => s.status === "running")
          const cancelled = yield* call(control, "DELETE", `/v1/sessions/${a}`)
          assert.strictEqual(cancelled.body.status, "cancelled", cancelled.text)
          assert.strictEqual(cancelled.body.reason, "cancelled_by_user")

          const b = (yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId
          yield* waitForSession(control, b, (s) => s.status === "running")
          return b
        }))
        // The node went away (its scope closed the socket): the running session failed as node_lost.
        const lost = yield* waitForSession(control, node, (s) => s.status !== "running")
        assert.strictEqual(lost.status, "failed")
        assert.strictEqual(lost.reason, "node_lost")
        // It stays listed as lost, with when it was last heard from, and nothing is dispatched to it.
        const gone = yield* waitFor(
          "listed as lost",
          call(control, "GET", "/v1/nodes"),
          (r) => r.body[0]?.status === "lost",
        )
        assert.strictEqual(gone.body.length, 1)
        assert.deepInclude(gone.body[0], { id: "n-home", status: "lost" })
        assert.deepInclude(gone.body[0].capacity, { maxConcurrent: 3, running: 0, available: 0 })
        const lastSeen = Date.parse(gone.body[0].lastSeenAt)
        assert.isTrue(lastSeen > Date.now() - 30_000 && lastSeen <= Date.now(), gone.body[0].lastSeenAt)
        const queued = (yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId
        yield* Effect.sleep(1_000) // five dispatcher passes
        assert.strictEqual((yield* call(control, "GET", `/v1/sessions/${queued}`)).body.status, "pending")

        yield* Effect.scoped(Effect.gen(function* () {
          yield* callHomeNode(control.url, token.token, "n-home")
          const back = yield* waitFor(
            "ready again",
            call(control, "GET", "/v1/nodes"),
            (r) => r.body[0]?.status === "ready",
          )
          assert.strictEqual(back.body.length, 1)
          assert.isAtLeast(Date.parse(back.body[0].lastSeenAt), lastSeen)
          yield* waitForSession(control, queued, (s) => s.status === "running")
          yield* call(control, "DELETE", `/v1/nodes/tokens/${token.id}`)
          // Revoking its token forgets the node: not even listed as lost.
          yield* waitFor("revoked node dropped", nodesOf(control), (ids) => ids.length === 0)
          yield* Effect.sleep(1_500) // its redials are refused
          assert.deepStrictEqual(yield* nodesOf(control), [])
        }))
      }))

    it.effect("a token is bound to its node id, a live node id cannot be claimed twice, capacity is capped by control", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const mint = (body: Record<string, unknown>) =>
          Effect.map(call(control, "POST", "/v1/nodes/tokens", { body }), (r) => {
            assert.strictEqual(r.status, 201, r.text)
            return r.body
          })
        const bearer = (t: any) => ({ authorization: `Bearer ${t.token}` })
        // Minted for n-bound: any other id is refused before the upgrade, and nothing registers.
        const bound = yield* mint({ name: "bound", nodeId: "n-bound", maxConcurrent: 2 })
        assert.deepInclude(bound, { nodeId: "n-bound", maxConcurrent: 2 })
        assert.strictEqual(yield* upgradeStatus(control.url, { ...bearer(bound), "x-paws-node-id": "n-other" }), 403)
        // Minted without an id: the first node to connect binds it; another id is refused from then on.
        const loose = yield* mint({ name: "loose" })
        assert.isNull(loose.nodeId)

        yield* Effect.scoped(Effect.gen(function* () {
          // Both nodes report room for 10,000 sessions.
          yield* callHomeNode(control.url, bound.token, "n-bound", 10_000)
          yield* callHomeNode(control.url, loose.token, "n-loose", 10_000)
          const listed = yield* waitFor(
            "both registered",
            call(control, "GET", "/v1/nodes"),
            (r) => r.body.filter((n: any) => n.status === "ready").length === 2,
          )
          const cap = Object.fromEntries(listed.body.map((n: any) => [n.id, n.capacity.maxConcurrent]))
          assert.deepStrictEqual(cap, { "n-bound": 2, "n-loose": 5 }, "the token's cap, else PAWS_NODE_MAX_CONCURRENT")
          const tokens = (yield* call(control, "GET", "/v1/nodes/tokens")).body
          assert.strictEqual(tokens.find((t: any) => t.id === loose.id).nodeId, "n-loose")
          assert.strictEqual(
            yield* upgradeStatus(control.url, { ...bearer(loose), "x-paws-node-id": "n-thief" }),
            403,
            "bound by its first use",
          )
          // A second connection claiming a connected id (with its own valid token) is refused; the first stays.
          const other = yield* mint({ name: "other", nodeId: "n-bound" })
          assert.strictEqual(yield* upgradeStatus(control.url, { ...bearer(other), "x-paws-node-id": "n-bound" }), 409)
          assert.strictEqual(yield* upgradeStatus(control.url, { ...bearer(bound), "x-paws-node-id": "n-bound" }), 409)
          yield* Effect.sleep(500) // several heartbeats
          const still = (yield* call(control, "GET", "/v1/nodes")).body.find((n: any) => n.id === "n-bound")
          assert.strictEqual(still.status, "ready")

          // 9 sessions: never more than 2 + 5 run at once, whatever the nodes claim.
          const ids: Array<string> = []
          for (let i = 0; i < 9; i++) {
            ids.push((yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId)
          }
          const statuses = () =>
            Effect.forEach(ids, (id) => Effect.map(call(control, "GET", `/v1/sessions/${id}`), (r) => r.body))
          yield* waitFor(
            "7 running",
            statuses(),
            (all) => all.filter((s: any) => s.status === "running").length === 7,
          )
          yield* Effect.sleep(1_000) // five dispatcher passes
          const after = yield* statuses()
          assert.strictEqual(after.filter((s: any) => s.status === "running").length, 7)
          assert.strictEqual(after.filter((s: any) => s.status === "pending").length, 2)
          const perNode = after.filter((s: any) => s.status === "running").map((s: any) => s.node)
          assert.strictEqual(perNode.filter((n: string) => n === "n-bound").length, 2)
          for (const id of ids) yield* call(control, "DELETE", `/v1/sessions/${id}`)
        }))
      }))
  })
})

describe("static nodes (PAWS_NODES)", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("control dials a node's /rpc with PAWS_NODES_TOKEN, redials when it comes back, and runs sessions on it", () =>
      Effect.gen(function* () {
        const db = yield* TestDatabase
        const port = yield* Effect.promise(freePort)
        const nodeToken = `static-${crypto.randomUUID()}`
        const staticNode = (token: string) =>
          Layer.build(
            NodeServer.pipe(
              Layer.provide(fakeSessions()),
              Layer.provide(NodeConfig.layerWith({
                id: "n-static",
                host: "127.0.0.1",
                port,
                token: Redacted.make(token),
              })),
            ),
          )
        const control = yield* startControl(yield* db.fresh, {
          PAWS_NODES: `ws://127.0.0.1:${port}/rpc`,
          PAWS_NODES_TOKEN: nodeToken,
          PAWS_NODE_HEARTBEAT_MS: "200",
          PAWS_NODE_LOST_AFTER_MS: "1500",
        })
        // Up after control: control keeps redialling until it answers.
        yield* Effect.scoped(Effect.gen(function* () {
          yield* Effect.sleep(700)
          yield* staticNode("not-what-control-sends")
          yield* Effect.sleep(1_500)
          assert.deepStrictEqual(yield* nodesOf(control), [], "a node refusing control's token is not registered")
        }))
        yield* Effect.scoped(Effect.gen(function* () {
          yield* staticNode(nodeToken)
          yield* waitFor("static node registered", nodesOf(control), (ids) => ids.includes("n-static"), 40_000)
          const id = (yield* call(control, "POST", "/v1/sessions", { body: script("hang") })).body.sessionId
          yield* waitForSession(control, id, (s) => s.status === "running")
          const cancelled = yield* call(control, "DELETE", `/v1/sessions/${id}`)
          assert.strictEqual(cancelled.body.status, "cancelled")
        }))
        yield* waitFor(
          "static node lost",
          call(control, "GET", "/v1/nodes"),
          (r) => r.body.length === 1 && r.body[0].status === "lost",
        )
      }))
  })
})
