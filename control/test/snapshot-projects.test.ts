// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { connectLive } from "../../clients/src/LiveClient.ts"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, script, TestControl } from "./harness.ts"

const keyIn = (control: ControlHandle, project: string, scopes: Array<string>) =>
  Effect.map(call(control, "POST", "/v1/keys", { body: { name: `${project} ${scopes}`, scopes, project } }), (r) => {
    assert.strictEqual(r.status, 201, r.text)
    return r.body.secret as string
  })

/** A 400 whose issues name `path`. */
const refusedOn = (r: { status: number; body: any; text: string }, path: string) => {
  assert.strictEqual(r.status, 400, r.text)
  assert.strictEqual(r.body._tag, "InvalidRequest", r.text)
  assert.isDefined(r.body.issues.find((i: any) => i.path === path), `no issue on ${path}: ${r.text}`)
}

const names = (r: { body: any }) => (r.body as Array<any>).map((s) => `${s.name}:${s.project ?? "-"}`).sort()

for (const backend of backends) {
  describe(`snapshots belong to projects (${backend.name})`, () => {
    layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect(
          "built in the key's project, seen and used only there (others: 404, or a 400 naming the field); the " +
            "instance's own are shared; the instance admin sees all",
          () =>
            Effect.scoped(Effect.gen(function* () {
              const control = yield* TestControl
              yield* registerFakeNode(control.registry, {
                id: "n-snap",
                maxConcurrent: 8,
                built: ["default", "tools"],
                snapshots: [{ name: "default", status: "ready" }, { name: "tools", status: "ready" }],
              })
              for (const id of ["alpha", "beta"]) yield* call(control, "POST", "/v1/projects", { body: { id } })
              const alpha = yield* keyIn(control, "alpha", ["admin"])
              const beta = yield* keyIn(control, "beta", ["admin"])
              const betaWriter = yield* keyIn(control, "beta", ["sessions:write"])

              const built = yield* call(control, "POST", "/v1/snapshots", { key: alpha, body: { name: "alpha-env" } })
              assert.strictEqual(built.status, 202, built.text)
              assert.strictEqual(built.body.project, "alpha")
              const deadline = Date.now() + 10_000
              while ((yield* call(control, "GET", "/v1/snapshots/alpha-env", { key: alpha })).body.status !== "ready") {
                assert.isBelow(Date.now(), deadline, "alpha-env never became ready")
                yield* Effect.sleep(25)
              }

              // Listed: own and the instance's for a project's key; everything, with projects, for the instance admin.
              assert.deepStrictEqual(
                names(yield* call(control, "GET", "/v1/snapshots", { key: alpha })),
                ["alpha-env:alpha", "default:-", "tools:-"],
              )
              assert.deepStrictEqual(
                names(yield* call(control, "GET", "/v1/snapshots", { key: beta })),
                ["default:-", "tools:-"],
              )
              assert.deepStrictEqual(
                names(yield* call(control, "GET", "/v1/snapshots")),
                ["alpha-env:alpha", "default:-", "tools:-"],
              )
              const hidden = yield* call(control, "GET", "/v1/snapshots/alpha-env", { key: beta })
              assert.strictEqual(hidden.status, 404, hidden.text)
              assert.strictEqual(hidden.body._tag, "SnapshotNotFound")
              assert.strictEqual((yield* call(control, "GET", "/v1/snapshots/alpha-env")).body.project, "alpha")

              // Another project's name, or one of the instance's: refused by name; nothing is rebuilt.
              refusedOn(
                yield* call(control, "POST", "/v1/snapshots", { key: beta, body: { name: "alpha-env" } }),
                "name",
              )
              refusedOn(yield* call(control, "POST", "/v1/snapshots", { key: beta, body: { name: "tools" } }), "name")
              refusedOn(yield* call(control, "POST", "/v1/snapshots", { key: beta, body: { name: "default" } }), "name")
              // Deleting: another project's is unknown; the instance's is the instance admin's alone.
              const del = yield* call(control, "DELETE", "/v1/snapshots/alpha-env", { key: beta })
              assert.strictEqual(del.status, 404, del.text)
              const shared = yield* call(control, "DELETE", "/v1/snapshots/tools", { key: beta })
              assert.strictEqual(shared.status, 403, shared.text)
              assert.strictEqual((yield* call(control, "GET", "/v1/snapshots/alpha-env", { key: alpha })).status, 200)

              // Sessions and daemons naming another project's snapshot: a 400 on `snapshot`; the instance's run anywhere.
              const session = (key: string, snapshot: string) =>
                call(control, "POST", "/v1/sessions", { key, body: script("echo", { snapshot }) })
              refusedOn(yield* session(betaWriter, "alpha-env"), "snapshot")
              assert.strictEqual((yield* session(betaWriter, "tools")).status, 202)
              assert.strictEqual((yield* session(alpha, "alpha-env")).status, 202)
              const daemon = (key: string, snapshot: string, name: string) =>
                call(control, "POST", "/v1/daemons", {
                  key,
                  body: { name, snapshot, workload: { type: "script", script: "echo hi" } },
                })
              refusedOn(yield* daemon(beta, "alpha-env", "beta-d"), "snapshot")
              assert.strictEqual((yield* daemon(alpha, "alpha-env", "alpha-d")).status, 201)
              // The live RPC creates sessions the same way.
              const live = yield* Effect.acquireRelease(
                Effect.promise(() => connectLive(control.url, betaWriter)),
                (c) => Effect.sync(c.close),
              )
              const viaLive = yield* Effect.promise(() =>
                live.sessions.createSession(script("echo", { snapshot: "alpha-env" })).then(
                  () => "accepted",
                  (e: Error) => e.message,
                )
              )
              assert.match(viaLive, /snapshot: no snapshot "alpha-env" in project beta/)

              // Deleted by its project, the name is free for another.
              assert.strictEqual(
                (yield* call(control, "DELETE", "/v1/snapshots/alpha-env", { key: alpha })).status,
                204,
              )
              const reused = yield* call(control, "POST", "/v1/snapshots", { key: beta, body: { name: "alpha-env" } })
              assert.strictEqual(reused.status, 202, reused.text)
              assert.strictEqual(reused.body.project, "beta")
            })),
        )
      },
    )
  })
}
