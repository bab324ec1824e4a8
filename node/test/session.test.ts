import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testNodeLayer } from "./support/TestNode.ts"

layer(testNodeLayer({ PAWS_NODE_OUTPUT_CAP_BYTES: "4096" }), { excludeTestServices: true, timeout: 180_000 })(
  "session lifecycle (real VMs)",
  (it) => {
    it.effect("runs a script: stdout, stderr, exit code, /output/result.json", () =>
      Effect.gen(function* () {
        const { statuses, result, events } = yield* runToEnd(dispatchOf([
          "echo hello from $(uname -s)",
          "echo to-stderr >&2",
          `echo '{"ok":true,"n":3}' > /output/result.json`,
        ].join("\n")))
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
        assert.strictEqual(result.exitCode, 0)
        assert.strictEqual(result.stdout, "hello from Linux\n")
        assert.strictEqual(result.stderr, "to-stderr\n")
        assert.deepStrictEqual(result.output, { ok: true, n: 3 })
        assert.isFalse(result.truncated)
        assert.isTrue(events.some((e) => e._tag === "output" && e.stream === "stdout" && e.data.includes("hello")))
        yield* assertNothingLeft
      }))

    it.effect("reports a failing exit code, truncates output at the cap, rejects a non-JSON result", () =>
      Effect.gen(function* () {
        const { statuses, result } = yield* runToEnd(dispatchOf([
          "head -c 10000 /dev/zero | tr '\\0' x",
          "echo 'not json' > /output/result.json",
          "exit 7",
        ].join("\n")))
        assert.deepStrictEqual(statuses, ["starting", "running", "failed"])
        assert.strictEqual(result.exitCode, 7)
        assert.strictEqual(result.stdout, "x".repeat(4096))
        assert.isTrue(result.truncated)
        assert.isNull(result.output)
        assert.include(result.error ?? "", "not valid JSON")
        yield* assertNothingLeft
      }))
  },
)
