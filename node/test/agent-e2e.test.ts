import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { placeholderApiKey } from "../src/session/AgentWorkload.ts"
import { MirrorLog, mirrorNodeLayer } from "./support/MirrorWorld.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"

const realKey = `sk-ant-REAL-${crypto.randomUUID()}`
/**
 * The tool turn the fake API asks for: it reports what the guest holds. The patterns are written
 * so that the command itself (in the transcript, in the guest) never contains the real key's prefix.
 */
const toolCommand = [
  `echo "key=$ANTHROPIC_API_KEY"`,
  `echo "real-key-files=$(grep -rlE 'sk-ant-RE[A]L' /root /etc /tmp /usr/local /output 2>/dev/null | wc -l)"`,
  `echo "real-key-environ=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cE 'sk-ant-RE[A]L')"`,
].join("; ")

/**
 * The real Claude Code CLI in a claude-agent VM against a fake Messages API (streaming SSE, one
 * tool-use turn) that the test serves in its netns as api.anthropic.com.
 */
layer(mirrorNodeLayer(["claude-agent"], {}, toolCommand), { excludeTestServices: true, timeout: 900_000 })(
  "agent workload (real VM, real Claude Code, fake API)",
  (it) => {
    it.effect(
      "claude-code: transcript on stdout, answer in result.output, only the proxy holds the real key",
      () =>
        Effect.gen(function* () {
          const mirror = yield* MirrorLog
          const dispatch = dispatchOf("", {
            snapshot: "claude-agent",
            workload: { type: "agent", agent: "claude-code", prompt: "What does the guest hold?", maxTurns: 3 },
            resources: { vcpus: 2, memoryMB: 2048 },
            timeoutMs: 300_000,
            network: {
              allowOut: ["api.anthropic.com"],
              credentials: { "api.anthropic.com": { headers: { "x-api-key": realKey } } },
            },
          })
          const started = Date.now()
          const { statuses, result } = yield* runToEnd(dispatch)
          yield* Effect.logInfo(`claude-agent session: ${Date.now() - started} ms`)
          assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result).slice(-3000))
          const answer = result.output as string
          assert.isString(answer)
          assert.match(answer, /^FINAL ANSWER: /)
          assert.include(answer, "real-key-files=0")
          assert.include(answer, "real-key-environ=0")
          assert.match(answer, new RegExp(`key=(${placeholderApiKey(dispatch.sessionId)})?\\n`))
          const events = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string })
          assert.strictEqual(events.at(-1)?.type, "result")
          assert.isTrue(result.stdout.includes(`"tool_use"`), "the transcript shows the tool call")
          assert.notInclude(result.stdout + result.stderr, realKey)
          const calls = mirror.received.filter((r) => r.host === "api.anthropic.com" && r.method === "POST")
          assert.isAtLeast(calls.length, 2, "the tool turn and the final turn")
          for (const c of calls) assert.strictEqual(c.apiKey, realKey, `${c.url} reached the API with the real key`)
          yield* assertNothingLeft
        }),
      300_000,
    )

    it.effect(
      "custom: the user's agent command gets the prompt on stdin and the placeholder key",
      () =>
        Effect.gen(function* () {
          const dispatch = dispatchOf("", {
            snapshot: "claude-agent",
            workload: {
              type: "agent",
              agent: "custom",
              prompt: "ping",
              command: [
                "node",
                "-e",
                [
                  `const p = require("fs").readFileSync(0, "utf8")`,
                  `require("fs").writeFileSync("/output/result.json", JSON.stringify({ prompt: p }))`,
                  `console.log("key=" + process.env.ANTHROPIC_API_KEY)`,
                ].join(";"),
              ],
            },
          })
          const { statuses, result } = yield* runToEnd(dispatch)
          assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
          assert.deepStrictEqual(result.output, { prompt: "ping" })
          assert.strictEqual(result.stdout, `key=${placeholderApiKey(dispatch.sessionId)}\n`)
          yield* assertNothingLeft
        }),
      300_000,
    )
  },
)
