import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { encodeProxyDecisionLine, type ProxyMessage } from "../../core/src/ProxyConfig.ts"
import WebSocket from "ws"
import { curl, loopbackLookup } from "./support/Clients.ts"
import { startWorld, viaProxy } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let world: TestWorld
beforeAll(async () => {
  world = await startWorld((c) => ({
    ...c,
    approvals: ["POST echo.test/repos/*/merges", "other.test", "GET ws.test/held/**"],
    approvalTimeoutMs: 1500,
  }))
})
afterAll(() => world?.close())

type Approval = Extract<ProxyMessage, { _tag: "approval" }>

/** The next approval request the proxy sends its parent (polling its stdout messages). */
const nextApproval = async (seen: number): Promise<Approval> => {
  for (;;) {
    const approvals = world.proxy.messages.filter((m): m is Approval => m._tag === "approval")
    if (approvals.length > seen) return approvals[seen]!
    await new Promise((r) => setTimeout(r, 20))
  }
}
const approvalsSoFar = () => world.proxy.messages.filter((m) => m._tag === "approval").length
const decide = (requestId: string, approve: boolean) =>
  world.proxy.child.stdin!.write(encodeProxyDecisionLine({ _tag: "decision", requestId, approve }))
const receivedAt = (host: string, path: string) =>
  world.upstreams.received.filter((r) => r.host === host && r.url === path).length

describe("proxy: egress approval (real proxy process, real curl, real upstream)", () => {
  it("holds a matching request until approved, then forwards it with its body", async () => {
    const seen = approvalsSoFar()
    const pending = curl([
      ...viaProxy(world, "echo.test", "/repos/paws/merges?force=1"),
      "-X",
      "POST",
      "--data",
      "merge-me",
    ])
    const approval = await nextApproval(seen)
    assert.deepInclude(approval, {
      rule: "POST echo.test/repos/*/merges",
      host: "echo.test",
      method: "POST",
      path: "/repos/paws/merges?force",
    })
    assert.strictEqual(receivedAt("echo.test", "/repos/paws/merges?force=1"), 0, "held: not yet upstream")
    decide("not-a-request", false) // unknown ids and garbage lines are ignored
    world.proxy.child.stdin!.write("{not json\n")
    decide(approval.requestId, true)
    const res = await pending
    assert.strictEqual(res.status, 200)
    assert.strictEqual(receivedAt("echo.test", "/repos/paws/merges?force=1"), 1)
    assert.include(res.body, "merge-me")
    await world.proxy.waitForAudit((e) => e.decision === "approval_held" && e.host === "echo.test")
  })

  it("does not hold what the rule does not name: another method or a deeper path", async () => {
    const seen = approvalsSoFar()
    assert.strictEqual((await curl(viaProxy(world, "echo.test", "/repos/paws/merges"))).status, 200)
    const deeper = await curl([...viaProxy(world, "echo.test", "/repos/a/b/merges"), "-X", "POST", "--data", "x"])
    assert.strictEqual(deeper.status, 200)
    assert.strictEqual(approvalsSoFar(), seen)
  })

  it("a denied request is a 403 that says so, and never reaches the upstream", async () => {
    const seen = approvalsSoFar()
    const pending = curl(viaProxy(world, "other.test", "/denied-path"))
    const approval = await nextApproval(seen)
    decide(approval.requestId, false)
    const res = await pending
    assert.strictEqual(res.status, 403)
    assert.strictEqual(res.headers["x-paws-decision"], "approval_denied")
    assert.include(res.body, "needs a human's approval")
    assert.include(res.body, "denied")
    assert.strictEqual(receivedAt("other.test", "/denied-path"), 0)
  })

  it("no decision within the timeout: 403 with a clear body, nothing forwarded", async () => {
    const res = await curl(viaProxy(world, "other.test", "/too-late"))
    assert.strictEqual(res.status, 403)
    assert.strictEqual(res.headers["x-paws-decision"], "approval_timeout")
    assert.include(res.body, "none came within 2 s")
    assert.strictEqual(receivedAt("other.test", "/too-late"), 0)
    const audit = await world.proxy.waitForAudit((e) => e.decision === "approval_timeout")
    assert.strictEqual(audit.status, 403)
  })

  it("holds a WebSocket upgrade too: approved, it opens; denied, the guest reads a 403", async () => {
    const open = (path: string) =>
      new Promise<{ message: string } | { refused: number }>((resolve, reject) => {
        const ws = new WebSocket(`wss://ws.test:${world.proxy.ports.https}${path}`, {
          ca: world.proxy.caPem,
          lookup: loopbackLookup,
        })
        ws.on("message", (data) => {
          resolve({ message: data.toString() })
          ws.close()
        })
        ws.on("unexpected-response", (_req, res) => resolve({ refused: res.statusCode ?? 0 }))
        ws.on("error", reject)
      })
    let seen = approvalsSoFar()
    const approvedSocket = open("/held/a")
    const first = await nextApproval(seen)
    assert.deepInclude(first, { host: "ws.test", method: "GET", path: "/held/a" })
    decide(first.requestId, true)
    assert.property(await approvedSocket, "message")

    seen = approvalsSoFar()
    const deniedSocket = open("/held/b")
    decide((await nextApproval(seen)).requestId, false)
    assert.deepStrictEqual(await deniedSocket, { refused: 403 })
    assert.isFalse(world.upstreams.received.some((r) => r.host === "ws.test" && r.url === "/held/b"))
  })
})

describe("proxy: a held request outlives the idle timeout", () => {
  let quiet: TestWorld
  beforeAll(async () => {
    quiet = await startWorld((c) => ({
      ...c,
      limits: { ...c.limits, idleTimeoutMs: 400 },
      approvals: ["POST echo.test/slow/**"],
      approvalTimeoutMs: 5000,
    }))
  })
  afterAll(() => quiet?.close())

  it("approved well after the guest connection's idle timeout, it still goes through", async () => {
    const pending = curl([...viaProxy(quiet, "echo.test", "/slow/decision"), "-X", "POST", "--data", "late"])
    let approval: Approval | undefined
    while (approval === undefined) {
      approval = quiet.proxy.messages.find((m): m is Approval => m._tag === "approval")
      await new Promise((r) => setTimeout(r, 20))
    }
    await new Promise((r) => setTimeout(r, 1200)) // three idle timeouts of silence
    quiet.proxy.child.stdin!.write(
      encodeProxyDecisionLine({ _tag: "decision", requestId: approval.requestId, approve: true }),
    )
    const res = await pending
    assert.strictEqual(res.status, 200, res.body)
    assert.include(res.body, "late")
  })
})
