// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
// MCP tool-call governance through control: a server's maxCallsPerMinute (validated, stored,
// dispatched) and a grant's `approve` tools, whose held calls are listed and decided like proxy holds.
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, script, TestControl, waitForSession } from "./harness.ts"

/** Polls `path` until `done` holds on the reply body. */
const until = (control: ControlHandle, path: string, done: (body: any) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 400; i++) {
      const r = yield* call(control, "GET", path)
      if (r.status === 200 && done(r.body)) return r.body
      yield* Effect.sleep(25)
    }
    return yield* Effect.die(new Error(`${path} never matched`))
  })

describe("MCP tool-call governance through control", () => {
  layer(TestControl.layer().pipe(Layer.provide(backends[0]!.layer)), { excludeTestServices: true, timeout: 60_000 })(
    (it) => {
      it.effect("maxCallsPerMinute is validated, stored and dispatched; approve tools are held and decided", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const server = { name: "gh", transport: "stdio", command: "node", args: ["gh.js"] }
          for (const bad of [0, 1.5, "10", 100_001]) {
            const r = yield* call(control, "POST", "/v1/mcp-servers", { body: { ...server, maxCallsPerMinute: bad } })
            assert.strictEqual(r.status, 400, r.text)
            assert.include(r.text, "maxCallsPerMinute")
          }
          const created = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { ...server, maxCallsPerMinute: 30 },
          })
          assert.strictEqual(created.status, 201, created.text)
          assert.strictEqual(created.body.maxCallsPerMinute, 30)
          const listed = yield* call(control, "GET", "/v1/mcp-servers")
          assert.strictEqual(listed.body.find((s: any) => s.name === "gh").maxCallsPerMinute, 30)

          const badApprove = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: [{ server: "gh", approve: ["no spaces"] }] }),
          })
          assert.strictEqual(badApprove.status, 400, badApprove.text)
          assert.include(badApprove.text, "approve")
          const offList = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: [{ server: "gh", tools: ["list_issues"], approve: ["merge_pr"] }] }),
          })
          assert.strictEqual(offList.status, 400, offList.text)
          assert.strictEqual(offList.body.issues[0].path, "mcp[0].approve[0]")
          assert.include(offList.body.issues[0].message, "merge_pr is not in mcp[0].tools")

          const node = yield* registerFakeNode(control.registry, { id: "n-mcp-approve", maxConcurrent: 2 })
          const grant = { server: "gh", tools: ["list_issues", "merge_pr"], approve: ["merge_pr"] }
          const lonely = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: ["gh"], network: { allowOut: [], approvalTimeoutSeconds: 60 } }),
          })
          assert.strictEqual(lonely.status, 400, lonely.text)
          assert.include(lonely.text, "network.approvalTimeoutSeconds")
          const session = yield* call(control, "POST", "/v1/sessions", {
            body: script("egress mcp", { mcp: [grant], network: { allowOut: [], approvalTimeoutSeconds: 60 } }),
          })
          assert.strictEqual(session.status, 202, session.text)
          const id = session.body.sessionId as string
          const path = `/v1/sessions/${id}/egress-approvals`
          const [held] = yield* until(control, path, (b) => b.length === 1)
          assert.deepInclude(held, {
            rule: "mcp gh/merge_pr (approve)",
            host: "mcp.paws.internal",
            method: "tools/call",
            path: "/gh/merge_pr",
            status: "pending",
          })
          const sent = node.dispatched.find((d) => d.sessionId === id)!
          assert.deepStrictEqual(sent.mcp, [{
            name: "gh",
            transport: "stdio",
            command: "node",
            args: ["gh.js"],
            env: {},
            auditArguments: false,
            tools: ["list_issues", "merge_pr"],
            approve: ["merge_pr"],
            maxCallsPerMinute: 30,
          }])
          assert.strictEqual(sent.network.approvalTimeoutMs, 60_000, "the gateway's holds time out like the proxy's")
          assert.isUndefined(sent.network.approvals)

          // The decision reaches the node through DecideEgress: the fake node then finishes the session.
          const approved = yield* call(control, "POST", `${path}/${held.requestId}/approve`)
          assert.strictEqual(approved.status, 200, approved.text)
          const done = yield* waitForSession(control, id, (s) => s.status === "completed")
          assert.strictEqual(done.status, "completed")
          const events = yield* call(control, "GET", `/v1/sessions/${id}/events`)
          assert.include(events.text, "merged")
        }))
    },
  )
})
