import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option } from "effect"
import { HostCommand } from "../src/HostCommand.ts"
import { NodeConfig } from "../src/NodeConfig.ts"
import type { EgressHeld } from "../src/proxy/ProxyProcess.ts"
import { ProxyStarter } from "../src/proxy/ProxyStarter.ts"
import { hostCommandIn, sh, testNetns } from "./support/TestNet.ts"

describe("node ↔ proxy: egress approval", () => {
  it.live("the node's proxy reports a held request and refuses it on the node's decision", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* testNetns("pxa")
      yield* sh(["ip", "-n", ns, "tuntap", "add", "dev", "pwtest", "mode", "tap"])
      yield* sh(["ip", "-n", ns, "addr", "add", "10.79.1.1/30", "dev", "pwtest"])
      yield* sh(["ip", "-n", ns, "link", "set", "pwtest", "up"])
      const starter = yield* ProxyStarter.pipe(
        Effect.provide(ProxyStarter.direct.pipe(
          Layer.provide(Layer.succeed(HostCommand, hostCommandIn(ns))),
          Layer.provide(NodeConfig.layerWith({ netns: Option.some(ns) })),
        )),
      )
      const held = yield* Deferred.make<EgressHeld>()
      const proxy = yield* starter.start({
        sessionId: "0190f000-0000-7000-8000-0000000000ab",
        hostIp: "10.79.1.1",
        allowOut: ["held.example"],
        credentials: {},
        onAudit: () => {},
        approvals: ["DELETE held.example/repos/**"],
        approvalTimeoutMs: 60_000,
        onApproval: (h) => Deferred.doneUnsafe(held, Effect.succeed(h)),
      })
      const answer = yield* sh([
        "ip",
        "netns",
        "exec",
        ns,
        "curl",
        "-sk",
        "-X",
        "DELETE",
        "-w",
        "\n%{http_code}",
        "--max-time",
        "30",
        "--resolve",
        `held.example:${proxy.ports.https}:10.79.1.1`,
        `https://held.example:${proxy.ports.https}/repos/a/b?x=1`,
      ]).pipe(Effect.forkScoped)
      const request = yield* Deferred.await(held)
      assert.deepInclude(request, {
        rule: "DELETE held.example/repos/**",
        host: "held.example",
        method: "DELETE",
        path: "/repos/a/b?x",
      })
      proxy.decide(request.requestId, false)
      const out = yield* Fiber.join(answer)
      assert.match(out, /403$/)
      assert.include(out, "needs a human's approval")
    })))
})
