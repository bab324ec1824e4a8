import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Redacted, Stream } from "effect"
import * as net from "node:net"
import { registerFakeNode } from "../../control/test/FakeNode.ts"
import { call, pgliteBackend, readEvents, script, TestControl } from "../../control/test/harness.ts"
import { sessionEvents } from "../src/SessionEvents.ts"
import type { StreamedEvent } from "../src/SessionEvents.ts"

/** A loopback relay in front of control whose open connections the test can cut. */
const relayTo = (target: URL) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; cut: () => number; server: net.Server }>((resolve) => {
        const open = new Set<net.Socket>()
        const server = net.createServer((client) => {
          const upstream = net.connect(Number(target.port), target.hostname)
          open.add(client)
          client.on("close", () => open.delete(client))
          client.pipe(upstream).pipe(client)
          client.on("error", () => upstream.destroy())
          upstream.on("error", () => client.destroy())
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({
            url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
            server,
            cut: () => {
              const n = open.size
              for (const s of open) s.destroy()
              return n
            },
          }))
      })
    ),
    (r) => Effect.promise(() => new Promise<void>((done) => r.server.close(() => done()))),
  )

describe("client event stream", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("reconnects with Last-Event-ID after the connection drops: every event once, in order", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const relay = yield* relayTo(new URL(control.url))
          // `slow`: the fake node spaces its events 100 ms apart, so the stream is cut mid-session.
          const created = yield* call(control, "POST", "/v1/sessions", { body: script("echo slow") })
          assert.strictEqual(created.status, 202)
          const id = created.body.sessionId as string
          yield* registerFakeNode(control.registry, { id: "n-events", maxConcurrent: 1 })
          const settings = { url: relay.url, apiKey: Redacted.make(control.adminKey) }
          let cuts = 0
          const seen: Array<StreamedEvent> = []
          yield* sessionEvents(settings as never, id).pipe(
            Stream.runForEach((e) =>
              Effect.sync(() => {
                seen.push(e)
                // Cut after the first event and again after the third: two reconnects.
                if (seen.length === 1 || seen.length === 3) cuts += relay.cut()
              })
            ),
            Effect.timeout("30 seconds"),
          )
          assert.isAtLeast(cuts, 2)
          const all = yield* readEvents(control, id)
          assert.deepStrictEqual(seen.map((e) => e.id), all.frames.map((f) => f.id))
          assert.strictEqual(seen.at(-1)?.event._tag, "status")
        }))

      it.effect("does not retry what retrying cannot fix (an unknown session: 404)", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const settings = { url: control.url, apiKey: Redacted.make(control.adminKey) }
          const started = Date.now()
          const error = yield* Effect.flip(
            Stream.runDrain(sessionEvents(settings as never, "0190f000-0000-7000-8000-000000000000")),
          )
          assert.match(error.message, /HTTP 404/)
          assert.isBelow(Date.now() - started, 2000)
        }))
    },
  )
})
