// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { registerFakeNode } from "./FakeNode.ts"
import { backends, call, type ControlHandle, script, startControl, TestDatabase, waitForSession } from "./harness.ts"

/** Every id `GET /v1/sessions?<query>` yields, following `nextCursor` page by page. */
const allPages = (control: ControlHandle, query: string) =>
  Effect.gen(function* () {
    const seen: Array<string> = []
    let cursor: string | null = null
    do {
      const page: any = yield* call(control, "GET", `/v1/sessions?${query}${cursor ? `&cursor=${cursor}` : ""}`)
      assert.strictEqual(page.status, 200, page.text)
      assert.isAtMost(page.body.sessions.length, 2)
      seen.push(...page.body.sessions.map((s: any) => s.id))
      cursor = page.body.nextCursor
    } while (cursor !== null)
    return seen
  })

for (const backend of backends) {
  describe(`sessions list by node (${backend.name})`, () => {
    layer(backend.layer, { excludeTestServices: true, timeout: 120_000 })((it) => {
      it.effect("?node= filters server side, cursor paging stays whole, a bad node is a 400 naming it", () =>
        Effect.scoped(Effect.gen(function* () {
          const control = yield* startControl(yield* (yield* TestDatabase).fresh)
          yield* registerFakeNode(control.registry, { id: "n-a", maxConcurrent: 4, labels: { at: "a" } })
          yield* registerFakeNode(control.registry, { id: "n-b", maxConcurrent: 4, labels: { at: "b" } })
          // Interleaved, so a node's sessions are spread over every page of the unfiltered list.
          const on: Record<string, Array<string>> = { "n-a": [], "n-b": [] }
          for (let i = 0; i < 5; i++) {
            for (const at of ["a", "b"]) {
              const r = yield* call(control, "POST", "/v1/sessions", {
                body: script(`echo ${at}${i}`, { nodeSelector: { at } }),
              })
              assert.strictEqual(r.status, 202, r.text)
              on[`n-${at}`]!.push(r.body.sessionId)
            }
          }
          for (const id of [...on["n-a"]!, ...on["n-b"]!]) {
            yield* waitForSession(control, id, (s) => s.status === "completed")
          }
          // One never placed: no node, so no node filter lists it.
          const pending = yield* call(control, "POST", "/v1/sessions", {
            body: script("echo nowhere", { nodeSelector: { at: "c" } }),
          })
          assert.strictEqual(pending.status, 202, pending.text)

          for (const node of ["n-a", "n-b"]) {
            const seen = yield* allPages(control, `node=${node}&limit=2`)
            assert.deepStrictEqual(seen, [...on[node]!].reverse(), `${node}: all of its sessions, newest first, once`)
          }
          // Filters combine: status and node together.
          assert.deepStrictEqual(yield* allPages(control, "node=n-a&status=pending&limit=2"), [])
          assert.deepStrictEqual(yield* allPages(control, "node=n-gone&limit=2"), [])
          const all = yield* allPages(control, "limit=2")
          assert.include(all, pending.body.sessionId)

          const bad = yield* call(control, "GET", "/v1/sessions?node=Not%20A%20Node")
          assert.strictEqual(bad.status, 400, bad.text)
          assert.deepStrictEqual(bad.body.issues.map((i: any) => i.path), ["query.node"])
        })))
    })
  })
}
