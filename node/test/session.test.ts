import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import type { NodeSessionEvent } from "@paws/core"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testNodeLayer } from "./support/TestNode.ts"

layer(testNodeLayer({ PAWS_NODE_OUTPUT_CAP_BYTES: "4096" }), { excludeTestServices: true, timeout: 180_000 })(
  "session lifecycle (real VMs)",
  (it) => {
    it.effect("runs a script: stdout, stderr, exit code, /output/result.json", () =>
      Effect.gen(function* () {
        const script = [
          "echo hello from $(uname -s)",
          "echo to-stderr >&2",
          `echo "greeting=$GREETING"`,
          `echo "ca=$SSL_CERT_FILE"`,
          `echo '{"ok":true,"n":3}' > /output/result.json`,
        ].join("\n")
        const { statuses, result, events } = yield* runToEnd(
          dispatchOf(script, { workload: { type: "script", script, env: { GREETING: `it's "quoted" $HOME \\n` } } }),
        )
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
        assert.strictEqual(result.exitCode, 0)
        assert.strictEqual(
          result.stdout,
          `hello from Linux\ngreeting=it's "quoted" $HOME \\n\nca=/etc/ssl/certs/ca-certificates.crt\n`,
        )
        assert.strictEqual(result.stderr, "to-stderr\n")
        assert.deepStrictEqual(result.output, { ok: true, n: 3 })
        assert.isFalse(result.truncated)
        assert.isTrue(events.some((e) => e._tag === "output" && e.stream === "stdout" && e.data.includes("hello")))
        yield* assertNothingLeft
      }))

    it.effect("reports a failing exit code, truncates output at the cap, rejects a non-JSON result", () =>
      Effect.gen(function* () {
        const script = [
          "head -c 10000 /dev/zero | tr '\\0' x",
          `echo "big=\${#BIG}" >&2`,
          "echo 'not json' > /output/result.json",
          "exit 7",
        ].join("\n")
        // An env too large to travel inside the prepare command goes in its own write.
        const { statuses, result } = yield* runToEnd(
          dispatchOf(script, { workload: { type: "script", script, env: { BIG: "y".repeat(20_000) } } }),
        )
        assert.deepStrictEqual(statuses, ["starting", "running", "failed"])
        assert.strictEqual(result.exitCode, 7)
        assert.strictEqual(result.stdout, "x".repeat(4096))
        assert.isTrue(result.truncated)
        assert.strictEqual(result.stderr, "big=20000\n")
        assert.isNull(result.output)
        assert.include(result.error ?? "", "not valid JSON")
        yield* assertNothingLeft
      }))

    it.effect("kills the VM at the deadline and reports timeout", () =>
      Effect.gen(function* () {
        const started = Date.now()
        const { statuses, result, events } = yield* runToEnd(
          dispatchOf("echo started; sleep 300; echo never", { timeoutMs: 3_000 }),
        )
        assert.deepStrictEqual(statuses, ["starting", "running", "timeout"])
        assert.strictEqual(result.stdout, "started\n")
        assert.isNull(result.exitCode)
        assert.include(result.error ?? "", "timed out after 3000 ms")
        const last = events.at(-1)
        assert.strictEqual(last?._tag === "status" ? last.reason : undefined, "timed out after 3000 ms")
        assert.isBelow(Date.now() - started, 60_000)
        yield* assertNothingLeft
      }))

    it.effect("cancels mid-run and releases everything", () =>
      Effect.gen(function* () {
        const sessions = yield* LiveSessions
        const dispatch = dispatchOf("echo started; sleep 300")
        const events: Array<NodeSessionEvent> = []
        yield* sessions.run(dispatch).pipe(
          Stream.runForEach((e) =>
            Effect.gen(function* () {
              events.push(e)
              if (e._tag === "output") yield* sessions.cancel(dispatch.sessionId)
            })
          ),
        )
        const statuses = events.flatMap((e) => (e._tag === "status" ? [e.status] : []))
        assert.deepStrictEqual(statuses, ["starting", "running", "cancelled"])
        assert.deepStrictEqual(yield* sessions.capacity, { maxConcurrent: 2, running: 0, basis: "PAWS_NODE_MAX_VMS=2" })
        yield* assertNothingLeft
      }))

    it.effect("interrupting the event stream (caller gone) releases everything too", () =>
      Effect.gen(function* () {
        const sessions = yield* LiveSessions
        yield* sessions.run(dispatchOf("echo started; sleep 300")).pipe(
          Stream.takeUntil((e) => e._tag === "output"),
          Stream.runDrain,
        )
        yield* assertNothingLeft
      }))

    // Last: a stopped node admits nothing more.
    it.effect("a stopping node tears all its sessions down at once and ends each failed with its reason", () =>
      Effect.gen(function* () {
        const sessions = yield* LiveSessions
        const started = yield* Deferred.make<void>()
        let running = 0
        const runs = yield* Effect.forEach([1, 2], () =>
          sessions.run(dispatchOf("echo started; sleep 300")).pipe(
            Stream.tap((e) =>
              e._tag === "output" && ++running === 2 ? Deferred.succeed(started, undefined) : Effect.void
            ),
            Stream.runCollect,
            Effect.forkChild,
          ))
        yield* Deferred.await(started)
        yield* sessions.shutdown("node test-node shut down")
        for (const run of runs) {
          const events = yield* Fiber.join(run)
          const statuses = events.flatMap((e) => (e._tag === "status" ? [e.status] : []))
          assert.deepStrictEqual(statuses, ["starting", "running", "failed"])
          const last = events.at(-1)
          assert.strictEqual(last?._tag === "status" ? last.reason : undefined, "node test-node shut down")
          const result = events.find((e) => e._tag === "result")
          assert.strictEqual(result?._tag === "result" ? result.result.stdout : undefined, "started\n")
        }
        yield* assertNothingLeft
        const refused = yield* Effect.flip(Stream.runDrain(sessions.run(dispatchOf("true"))))
        assert.strictEqual(refused._tag, "NodeAtCapacity")
      }))
  },
)
