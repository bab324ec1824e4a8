// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { makeCertificateAuthority } from "@paws/proxy/CertificateAuthority"
import { makeLeafCertificateCache } from "@paws/proxy/LeafCertificateCache"
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:https"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { checkedAddress } from "../src/daemons/WatchFetch.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { call, pgliteBackend, startControl, TestDatabase } from "./harness.ts"

/** A loopback HTTPS server with its own test CA, serving `{ version, noise }` (noise differs each time). */
const watchedServer = Effect.acquireRelease(
  Effect.promise(async () => {
    const ca = await makeCertificateAuthority()
    const leaves = makeLeafCertificateCache(ca)
    const state = { version: 1, hits: 0 }
    const server = createServer({ SNICallback: leaves.sniCallback }, (_req, res) => {
      state.hits++
      res.setHeader("content-type", "application/json")
      res.end(JSON.stringify({ version: state.version, noise: Math.random() }))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const dir = mkdtempSync(join(tmpdir(), "paws-watch-ca-"))
    writeFileSync(join(dir, "ca.pem"), ca.certificatePem)
    return { server, state, caFile: join(dir, "ca.pem"), dir, port: (server.address() as AddressInfo).port }
  }),
  (s) =>
    Effect.promise(() => new Promise<void>((resolve) => s.server.close(() => resolve()))).pipe(
      Effect.andThen(Effect.sync(() => rmSync(s.dir, { recursive: true, force: true }))),
    ),
)

const until = (what: string, check: () => Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 20_000
    while (!(yield* check())) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`never happened: ${what}`))
      yield* Effect.sleep(50)
    }
  })

describe("watch triggers", () => {
  layer(pgliteBackend, { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.effect("the address policy refuses private, loopback and metadata targets unless the test flag allows loopback", () =>
      Effect.gen(function* () {
        for (const host of ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "[::1]", "192.168.0.1"]) {
          const refused = yield* Effect.promise(() =>
            checkedAddress(host, { allowLoopback: false }).then(() => "allowed", (e: Error) => e.message)
          )
          assert.match(refused, /may not reach/, host)
        }
        const loop = yield* Effect.promise(() => checkedAddress("127.0.0.1", { allowLoopback: true }))
        assert.strictEqual(loop.address, "127.0.0.1")
        const metadata = yield* Effect.promise(() =>
          checkedAddress("169.254.169.254", { allowLoopback: true }).then(() => "allowed", (e: Error) => e.message)
        )
        assert.match(metadata, /may not reach/)
      }))

    it.effect("a watch fires once per change of its JSON pointer's value, from a test HTTPS server", () =>
      Effect.gen(function* () {
        const upstream = yield* watchedServer
        const db = yield* TestDatabase
        const control = yield* startControl(yield* db.fresh, {
          PAWS_TEST_WATCH_ALLOW_LOOPBACK: "true",
          PAWS_TEST_WATCH_CA_FILE: upstream.caFile,
          PAWS_WATCH_MIN_INTERVAL_S: "1",
        })
        const node = yield* registerFakeNode(control.registry, { id: "n-watch", maxConcurrent: 4 })
        const created = yield* call(control, "POST", "/v1/daemons", {
          body: {
            name: "watcher",
            workload: { type: "script", script: "cat /input/event.json" },
            triggers: [{
              kind: "watch",
              name: "release",
              url: `https://localhost:${upstream.port}/release.json`,
              intervalSeconds: 1,
              pointer: "/version",
            }],
          },
        })
        assert.strictEqual(created.status, 201, created.text)
        const sessions = () =>
          Effect.map(call(control, "GET", "/v1/sessions?daemon=watcher"), (r) => r.body.sessions as Array<any>)

        // The baseline poll, then two more with only the noise changing: no invocation.
        yield* until("three polls", () => Effect.succeed(upstream.state.hits >= 3))
        assert.strictEqual((yield* sessions()).length, 0)

        upstream.state.version = 2
        yield* until("an invocation for version 2", () => Effect.map(sessions(), (s) => s.length === 1))
        const hits = upstream.state.hits
        yield* until("two more polls", () => Effect.succeed(upstream.state.hits >= hits + 2))
        assert.strictEqual((yield* sessions()).length, 1, "the same value again fires nothing")

        upstream.state.version = 3
        yield* until("an invocation for version 3", () => Effect.map(sessions(), (s) => s.length === 2))
        const ids = (yield* sessions()).map((s) => s.id).reverse()
        yield* until(
          "both dispatched",
          () => Effect.succeed(ids.every((id) => node.dispatched.some((d) => d.sessionId === id))),
        )
        const values = ids.map((id) => {
          const d = node.dispatched.find((x) => x.sessionId === id)!
          assert.strictEqual(d.input?.trigger, "watch")
          return JSON.parse(d.input!.files["event.json"]!).value
        })
        assert.deepStrictEqual(values, [2, 3])
      }))
  })
})
