// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, script, TestControl, waitForSession } from "./harness.ts"

const envSecret = "ghp_mcp-env-secret-9f3b2c-never-shown"
const headerSecret = "Bearer mcp-header-secret-71ad-never-shown"

const stdioServer = {
  name: "github",
  transport: "stdio",
  command: "node",
  args: ["server.js", "--stdio"],
  env: { GITHUB_TOKEN: envSecret },
}

describe("MCP server registry over HTTP", () => {
  const backend = backends[0]!
  layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 60_000 })(
    (it) => {
      it.effect("registers, lists and removes servers; secret values are never returned", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const created = yield* call(control, "POST", "/v1/mcp-servers", { body: stdioServer })
          assert.strictEqual(created.status, 201, created.text)
          assert.deepStrictEqual(created.body.env, ["GITHUB_TOKEN"])
          assert.deepStrictEqual(created.body.args, ["server.js", "--stdio"])
          assert.strictEqual(created.body.auditArguments, false)
          assert.notInclude(created.text, envSecret)

          const http = yield* call(control, "POST", "/v1/mcp-servers", {
            body: {
              name: "remote",
              transport: "http",
              url: "https://mcp.example.com/mcp",
              headers: { Authorization: headerSecret },
              auditArguments: true,
            },
          })
          assert.strictEqual(http.status, 201, http.text)
          assert.deepStrictEqual(http.body.headers, ["Authorization"])

          const again = yield* call(control, "POST", "/v1/mcp-servers", { body: stdioServer })
          assert.strictEqual(again.status, 409, again.text)
          assert.strictEqual(again.body._tag, "McpServerExists")

          const badName = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { ...stdioServer, name: "Bad Name" },
          })
          assert.strictEqual(badName.status, 400, badName.text)
          assert.include(badName.text, "name")
          const badTransport = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { name: "x", transport: "sse", url: "https://a.b" },
          })
          assert.strictEqual(badTransport.status, 400, badTransport.text)
          const badEnv = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { ...stdioServer, name: "badenv", env: { "NOT-A-NAME": "x" } },
          })
          assert.strictEqual(badEnv.status, 400, badEnv.text)
          const badHeader = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { name: "badheader", transport: "http", url: "https://a.b/mcp", headers: { "a b": "x" } },
          })
          assert.strictEqual(badHeader.status, 400, badHeader.text)
          const mixed = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { name: "mixed", transport: "http", url: "https://a.b/mcp", command: "x" },
          })
          assert.strictEqual(mixed.status, 400, mixed.text)
          assert.include(mixed.text, "command")
          const noUrl = yield* call(control, "POST", "/v1/mcp-servers", { body: { name: "nourl", transport: "http" } })
          assert.strictEqual(noUrl.status, 400, noUrl.text)
          assert.include(noUrl.text, "url")
          const nul = yield* call(control, "POST", "/v1/mcp-servers", {
            body: { ...stdioServer, name: "nul", args: ["a\u0000b"] },
          })
          assert.strictEqual(nul.status, 400, nul.text)
          assert.include(nul.text, "args[0]")

          const listed = yield* call(control, "GET", "/v1/mcp-servers")
          assert.strictEqual(listed.status, 200)
          assert.deepStrictEqual(listed.body.map((s: any) => s.name), ["github", "remote"])
          assert.notInclude(listed.text, envSecret)
          assert.notInclude(listed.text, headerSecret)

          const removed = yield* call(control, "DELETE", "/v1/mcp-servers/remote")
          assert.strictEqual(removed.status, 204, removed.text)
          const gone = yield* call(control, "DELETE", "/v1/mcp-servers/remote")
          assert.strictEqual(gone.status, 404, gone.text)
          assert.strictEqual(gone.body._tag, "McpServerNotFound")
        }))

      it.effect("a session names servers it may use: unknown ones are a 400, known ones reach the node resolved", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const unknown = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: ["github", "nope"] }),
          })
          assert.strictEqual(unknown.status, 400, unknown.text)
          assert.include(unknown.text, "mcp[1]")
          assert.include(unknown.text, "nope")
          const twice = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: ["github", { server: "github" }] }),
          })
          assert.strictEqual(twice.status, 400, twice.text)
          const badTool = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: [{ server: "github", tools: ["no spaces"] }] }),
          })
          assert.strictEqual(badTool.status, 400, badTool.text)

          const created = yield* call(control, "POST", "/v1/sessions", {
            body: script("true", { mcp: [{ server: "github", tools: ["list_issues"] }] }),
          })
          assert.strictEqual(created.status, 202, created.text)
          const id = created.body.sessionId
          const got = yield* call(control, "GET", `/v1/sessions/${id}`)
          assert.deepStrictEqual(got.body.spec.mcp, [{ server: "github", tools: ["list_issues"] }])
          assert.notInclude(got.text, envSecret)

          const node = yield* registerFakeNode(control.registry, { id: "n-mcp", maxConcurrent: 4 })
          yield* waitForSession(control, id, (s) => s.status === "completed")
          const dispatch = node.dispatched.find((d) => d.sessionId === id)!
          assert.deepStrictEqual(dispatch.mcp, [{
            name: "github",
            transport: "stdio",
            command: "node",
            args: ["server.js", "--stdio"],
            env: { GITHUB_TOKEN: envSecret },
            auditArguments: false,
            tools: ["list_issues"],
          }])
        }))

      it.effect("a server removed while a session that names it waits: the session fails at dispatch, saying why", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const added = yield* call(control, "POST", "/v1/mcp-servers", { body: { ...stdioServer, name: "brief" } })
          assert.strictEqual(added.status, 201, added.text)
          const queued = yield* call(control, "POST", "/v1/sessions", { body: script("true", { mcp: ["brief"] }) })
          assert.strictEqual(queued.status, 202, queued.text)
          assert.strictEqual((yield* call(control, "DELETE", "/v1/mcp-servers/brief")).status, 204)
          yield* registerFakeNode(control.registry, { id: "n-mcp-removed", maxConcurrent: 4 })
          const failed = yield* waitForSession(control, queued.body.sessionId, (s) => s.status === "failed")
          assert.strictEqual(failed.reason, "mcp_server_not_registered: brief")
        }))
    },
  )
})
