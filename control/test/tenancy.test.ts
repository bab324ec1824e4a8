// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { connectLive } from "../../clients/src/LiveClient.ts"
import { backends, call, type ControlHandle, script, TestControl } from "./harness.ts"

/** Creates a key in `project` (as the instance admin) and returns its secret and id. */
const keyIn = (control: ControlHandle, project: string, scopes: Array<string>, name = `${project} key`) =>
  Effect.gen(function* () {
    const r = yield* call(control, "POST", "/v1/keys", { body: { name, scopes, project } })
    assert.strictEqual(r.status, 201, r.text)
    assert.strictEqual(r.body.key.project, project)
    return { secret: r.body.secret as string, id: r.body.key.id as string }
  })

const tryLive = <A>(f: () => Promise<A>) =>
  Effect.promise(() =>
    f().then((v) => ({ ok: true, value: v }), (e: Error) => ({ ok: false, name: e.name, message: e.message }))
  )

for (const backend of backends) {
  describe(`projects: tenancy over REST and the live RPC (${backend.name})`, () => {
    layer(TestControl.layer().pipe(Layer.provide(backend.layer)), { excludeTestServices: true, timeout: 120_000 })(
      (it) => {
        it.effect("two projects' keys see and act only within their project; others' ids are 404", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            // The existing (first) admin key lives in `default`, which always exists.
            const projects = yield* call(control, "GET", "/v1/projects")
            assert.deepStrictEqual(projects.body.map((p: any) => p.id), ["default"])
            for (const id of ["alpha", "beta"]) {
              const created = yield* call(control, "POST", "/v1/projects", { body: { id, description: `team ${id}` } })
              assert.strictEqual(created.status, 201, created.text)
            }
            const again = yield* call(control, "POST", "/v1/projects", { body: { id: "alpha" } })
            assert.strictEqual(again.status, 409)
            const badId = yield* call(control, "POST", "/v1/projects", { body: { id: "Not A Project" } })
            assert.strictEqual(badId.status, 400)
            assert.include(badId.text, "id")

            const a = yield* keyIn(control, "alpha", ["sessions:write"])
            const b = yield* keyIn(control, "beta", ["sessions:write"])
            const bAdmin = yield* keyIn(control, "beta", ["admin"])
            const noSuch = yield* call(control, "POST", "/v1/keys", {
              body: { name: "x", scopes: ["read"], project: "gamma" },
            })
            assert.strictEqual(noSuch.status, 404)

            const aSession = yield* call(control, "POST", "/v1/sessions", { key: a.secret, body: script("echo a") })
            assert.strictEqual(aSession.status, 202, aSession.text)
            const aId = aSession.body.sessionId as string
            const bSession = yield* call(control, "POST", "/v1/sessions", { key: b.secret, body: script("echo b") })
            const bId = bSession.body.sessionId as string

            // Own session: visible, with its project.
            const own = yield* call(control, "GET", `/v1/sessions/${aId}`, { key: a.secret })
            assert.strictEqual(own.status, 200)
            assert.strictEqual(own.body.project, "alpha")
            // Others': 404 exactly like an unknown id, for get, events and cancel; the list is filtered.
            for (
              const [method, path] of [["GET", `/v1/sessions/${bId}`], ["GET", `/v1/sessions/${bId}/events`], [
                "DELETE",
                `/v1/sessions/${bId}`,
              ]] as const
            ) {
              const r = yield* call(control, method, path, { key: a.secret })
              assert.strictEqual(r.status, 404, `${method} ${path}: ${r.text}`)
              assert.strictEqual(r.body._tag, "SessionNotFound")
            }
            const listA = yield* call(control, "GET", "/v1/sessions", { key: a.secret })
            assert.deepStrictEqual(listA.body.sessions.map((s: any) => s.id), [aId])
            const listB = yield* call(control, "GET", "/v1/sessions", { key: b.secret })
            assert.deepStrictEqual(listB.body.sessions.map((s: any) => s.id), [bId])
            // The refused cancel changed nothing.
            const stillB = yield* call(control, "GET", `/v1/sessions/${bId}`, { key: b.secret })
            assert.strictEqual(stillB.body.status, "pending")
            // The instance admin (default project) does not see project sessions either.
            const adminList = yield* call(control, "GET", "/v1/sessions")
            assert.deepStrictEqual(adminList.body.sessions, [])

            // A project's admin manages only its project's keys, and not projects.
            const bKeys = yield* call(control, "GET", "/v1/keys", { key: bAdmin.secret })
            assert.sameMembers(bKeys.body.map((k: any) => k.id), [b.id, bAdmin.id])
            const revokeA = yield* call(control, "DELETE", `/v1/keys/${a.id}`, { key: bAdmin.secret })
            assert.strictEqual(revokeA.status, 404)
            const elsewhere = yield* call(control, "POST", "/v1/keys", {
              key: bAdmin.secret,
              body: { name: "x", scopes: ["read"], project: "alpha" },
            })
            assert.strictEqual(elsewhere.status, 403)
            const inOwn = yield* call(control, "POST", "/v1/keys", {
              key: bAdmin.secret,
              body: { name: "b reader", scopes: ["read"] },
            })
            assert.strictEqual(inOwn.body.key.project, "beta")
            const listProjects = yield* call(control, "GET", "/v1/projects", { key: bAdmin.secret })
            assert.strictEqual(listProjects.status, 403)
            const getOther = yield* call(control, "GET", "/v1/projects/alpha", { key: bAdmin.secret })
            assert.strictEqual(getOther.status, 404)
            const getOwn = yield* call(control, "GET", "/v1/projects/beta", { key: bAdmin.secret })
            assert.strictEqual(getOwn.body.description, "team beta")

            // Deleting a project with unfinished sessions is refused; once they end, it goes and its keys stop working.
            const busy = yield* call(control, "DELETE", "/v1/projects/beta")
            assert.strictEqual(busy.status, 409)
            assert.include(busy.body.message, "unfinished")
            const cancelled = yield* call(control, "DELETE", `/v1/sessions/${bId}`, { key: b.secret })
            assert.strictEqual(cancelled.body.status, "cancelled")
            const gone = yield* call(control, "DELETE", "/v1/projects/beta")
            assert.strictEqual(gone.status, 204, gone.text)
            const afterDelete = yield* call(control, "GET", "/v1/sessions", { key: b.secret })
            assert.strictEqual(afterDelete.status, 401)
            const defaultStays = yield* call(control, "DELETE", "/v1/projects/default")
            assert.strictEqual(defaultStays.status, 409)
          }))

        it.effect("the live RPC applies the same scoping: another project's session is unknown, as over REST", () =>
          Effect.gen(function* () {
            const control = yield* TestControl
            for (const id of ["live-a", "live-b"]) yield* call(control, "POST", "/v1/projects", { body: { id } })
            const a = yield* keyIn(control, "live-a", ["sessions:write"])
            const b = yield* keyIn(control, "live-b", ["sessions:write"])
            const connect = (key: string) =>
              Effect.acquireRelease(Effect.promise(() => connectLive(control.url, key)), (c) => Effect.sync(c.close))
            const liveA = (yield* connect(a.secret)).sessions
            const liveB = (yield* connect(b.secret)).sessions
            const accepted = yield* Effect.promise(() => liveB.createSession(script("hang")))
            const bId = accepted.sessionId
            const own = yield* Effect.promise(() => liveB.getSession(bId))
            assert.strictEqual(own.project, "live-b")

            const get = yield* tryLive(() => liveA.getSession(bId))
            assert.deepInclude(get, { ok: false, message: `no session ${bId}` })
            const cancel = yield* tryLive(() => liveA.cancelSession(bId))
            assert.deepInclude(cancel, { ok: false, message: `no session ${bId}` })
            const follow = yield* tryLive(() => liveA.subscribe(bId, () => undefined))
            assert.deepInclude(follow, { ok: false, message: `no session ${bId}` })
            const still = yield* call(control, "GET", `/v1/sessions/${bId}`, { key: b.secret })
            assert.strictEqual(still.body.status, "pending")
            // Sessions created over the live API land in the key's project.
            const viaA = yield* Effect.promise(() => liveA.createSession(script("echo")))
            const rest = yield* call(control, "GET", `/v1/sessions/${viaA.sessionId}`, { key: a.secret })
            assert.strictEqual(rest.body.project, "live-a")
            const cancelOwn = yield* Effect.promise(() => liveB.cancelSession(bId))
            assert.strictEqual(cancelOwn.status, "cancelled")
          }))
      },
    )
  })
}
