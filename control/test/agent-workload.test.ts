// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { backends, call, type ControlHandle, TestControl } from "./harness.ts"

const limits = { PAWS_MAX_SCRIPT_BYTES: "1000" }

const rejects = (control: ControlHandle, workload: unknown, path: string, message?: RegExp) =>
  Effect.gen(function* () {
    const r = yield* call(control, "POST", "/v1/sessions", { body: { snapshot: "claude-agent", workload } })
    assert.strictEqual(r.status, 400, `${path}: ${r.text}`)
    assert.strictEqual(r.body._tag, "InvalidRequest")
    const issue = r.body.issues.find((i: any) => i.path === path)
    assert.isDefined(issue, `no issue for ${path} in ${r.text}`)
    if (message !== undefined) assert.match(issue.message, message)
  })

const backend = backends[0]!
describe(`agent workloads over HTTP (${backend.name})`, () => {
  layer(TestControl.layer(limits).pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("the seed-style body is accepted and dispatched as written", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const workload = { type: "agent", prompt: "Review this repo", model: "claude-sonnet-4-5", maxTurns: 3 }
          const r = yield* call(control, "POST", "/v1/sessions", {
            body: { snapshot: "claude-agent", workload, network: { allowOut: ["api.anthropic.com"] } },
          })
          assert.include([201, 202], r.status, r.text)
          const got = yield* call(control, "GET", `/v1/sessions/${r.body.sessionId ?? r.body.id}`)
          assert.deepStrictEqual(got.body.spec?.workload ?? got.body.workload, workload, got.text)
        }))

      it.effect("bad agent input is a 400 naming the field", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* rejects(control, { type: "agent", agent: "gpt-cli", prompt: "x" }, "workload.agent")
          yield* rejects(control, { type: "agent", prompt: "" }, "workload.prompt")
          yield* rejects(control, { type: "agent", prompt: "x".repeat(1001) }, "workload.prompt", /maximum is 1000/)
          yield* rejects(control, { type: "agent", prompt: "x".repeat(300 * 1024) }, "workload.prompt")
          yield* rejects(control, { type: "agent", prompt: "a\u0000b" }, "workload.prompt", /NUL/)
          yield* rejects(control, { type: "agent", prompt: "x", maxTurns: 0 }, "workload.maxTurns")
          yield* rejects(control, { type: "agent", prompt: "x", model: "a b" }, "workload.model")
          yield* rejects(control, { type: "agent", prompt: "x", allowedTools: ["Bash\n"] }, "workload.allowedTools[0]")
          yield* rejects(control, { type: "agent", agent: "custom", prompt: "x" }, "workload.command", /required/)
          yield* rejects(control, { type: "agent", prompt: "x", command: ["sh"] }, "workload.command", /only/)
          yield* rejects(control, { type: "agent", agent: "custom", prompt: "x", command: [] }, "workload.command")
        }))
    },
  )
})
