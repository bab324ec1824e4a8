import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { connectLive } from "../../clients/src/LiveClient.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, script, startControl, TestDatabase } from "./harness.ts"

const keyIn = (
  control: ControlHandle,
  project: string,
  scopes: Array<string>,
) =>
  Effect.gen(function* () {
    const r = yield* call(control, "POST", "/v1/keys", {
      body: { name: `${project} key`, scopes, project },
    })
    assert.strictEqual(r.status, 201, r.text)
    return r.body.secret as string
  })

/** Every way into a running session besides its record: exec, files, ports and the shell. */
const liveRoutes = (id: string) =>
  [
    ["POST", `/v1/sessions/${id}/exec`, { body: { command: ["true"] } }],
    ["GET", `/v1/sessions/${id}/files?path=/tmp/x`, {}],
    ["PUT", `/v1/sessions/${id}/files?path=/tmp/x`, {
      raw: "hello",
      headers: { "content-type": "application/octet-stream" },
    }],
    ["POST", `/v1/sessions/${id}/ports`, {
      body: { port: 8080, access: "public" },
    }],
    ["GET", `/v1/sessions/${id}/ports`, {}],
    ["GET", `/v1/sessions/${id}/shell`, {}],
  ] as const

for (const backend of backends) {
  describe(`tenancy of a running session's exec, files, ports and shell (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("another project's key with the scope gets 404 everywhere, its own project's gets through", () =>
          Effect.gen(function* () {
            const db = yield* TestDatabase
            const control = yield* startControl(yield* db.fresh)
            yield* registerFakeNode(control.registry, {
              id: "n-ten",
              maxConcurrent: 2,
              portTarget: "http://127.0.0.1:9",
            })
            for (const id of ["alpha", "beta"]) {
              assert.strictEqual(
                (yield* call(control, "POST", "/v1/projects", { body: { id } }))
                  .status,
                201,
              )
            }
            const a = yield* keyIn(control, "alpha", ["sessions:write"])
            const b = yield* keyIn(control, "beta", ["sessions:write"])
            const created = yield* call(control, "POST", "/v1/sessions", {
              key: a,
              body: script("hang"),
            })
            const id = created.body.sessionId as string
            // Running on the fake node (polled with alpha's key: the session is alpha's only).
            while (
              (yield* call(control, "GET", `/v1/sessions/${id}`, { key: a }))
                .body.status !== "running"
            ) {
              yield* Effect.sleep(25)
            }

            for (const [method, path, options] of liveRoutes(id)) {
              const other = yield* call(control, method, path, {
                ...options,
                key: b,
              })
              assert.strictEqual(
                other.status,
                404,
                `${method} ${path} by beta: ${other.text}`,
              )
              assert.strictEqual(
                other.body._tag,
                "SessionNotFound",
                `${method} ${path}`,
              )
              // The owner's key reaches the session (the fake node's own refusals are not 404s).
              const own = yield* call(control, method, path, {
                ...options,
                key: a,
              })
              assert.notStrictEqual(
                own.status,
                404,
                `${method} ${path} by alpha: ${own.text}`,
              )
            }
            // Nothing was exposed by the refused call: only alpha's own exposure is listed.
            const listed = yield* call(
              control,
              "GET",
              `/v1/sessions/${id}/ports`,
              { key: a },
            )
            assert.strictEqual(listed.body.length, 1)

            // The live RPC: beta's capability does not know alpha's session either.
            const live = yield* Effect.acquireRelease(
              Effect.promise(() => connectLive(control.url, b)),
              (c) => Effect.sync(c.close),
            )
            for (
              const attempt of [
                () => live.sessions.getSession(id),
                () => live.sessions.cancelSession(id),
              ]
            ) {
              const outcome = yield* Effect.promise(() => attempt().then(() => "ok", (e: Error) => e.message))
              assert.strictEqual(outcome, `no session ${id}`)
            }
            const still = yield* call(control, "GET", `/v1/sessions/${id}`, {
              key: a,
            })
            assert.strictEqual(still.body.status, "running")
          }).pipe(Effect.scoped))
      },
    )
  })
}
