import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { spawn } from "node:child_process"
import { Firewall } from "../src/network/Firewall.ts"
import { HostCommand } from "../src/HostCommand.ts"
import { isPawsTable, isPawsTap } from "../src/network/Naming.ts"
import { NetworkSlot } from "../src/network/NetworkSlot.ts"
import { AddressSlots, parsePool } from "../src/network/AddressSlots.ts"
import { NodeTeardown } from "../src/NodeTeardown.ts"
import { hostCommandIn, linksIn, tablesIn, testNetns } from "./support/TestNet.ts"

const sid = (n: number) => `0190f000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`

/** The node's network services in `netns`, with every host command they run recorded. */
const nodeNet = (netns: string, ran: Array<string>) => {
  const inner = hostCommandIn(netns)
  const recording = Layer.succeed(
    HostCommand,
    HostCommand.of({
      ...inner,
      run: (argv, stdin) => Effect.suspend(() => (ran.push(argv.join(" ")), inner.run(argv, stdin))),
    }),
  )
  return Layer.mergeAll(NetworkSlot.layerNoDeps, Firewall.layerNoDeps).pipe(
    Layer.provideMerge(NodeTeardown.layer),
    Layer.provide(Layer.effect(AddressSlots, AddressSlots.make(parsePool("10.78.0.0/24") as never))),
    Layer.provide(recording),
  )
}

describe("NodeTeardown", () => {
  it.live("a stopping node kills its VMs, stops its proxies and removes all TAPs and tables in two commands; releases then skip", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* testNetns("teardown")
      const ran: Array<string> = []
      const sessions = yield* Scope.make()
      // A stand-in for a QEMU the node started (launchQemu registers each one's pid like this).
      const vm = spawn("sleep", ["600"], { stdio: "ignore" })
      const vmExit = new Promise<NodeJS.Signals | null>((resolve) => vm.once("exit", (_, signal) => resolve(signal)))
      // And for a session's proxy (ProxyStarter/WarmProxyPool register theirs).
      const proxy = spawn("sleep", ["600"], { stdio: "ignore" })
      const proxyExit = new Promise<NodeJS.Signals | null>((resolve) =>
        proxy.once("exit", (_, signal) => resolve(signal))
      )
      yield* Effect.gen(function* () {
        const slots = yield* NetworkSlot
        const firewall = yield* Firewall
        const teardown = yield* NodeTeardown
        for (const n of [1, 2, 3]) {
          const slot = yield* slots.acquire(sid(n)).pipe(Scope.provide(sessions))
          yield* firewall.isolate(slot).pipe(Scope.provide(sessions))
        }
        teardown.addQemu(vm.pid!)
        teardown.addProxy(proxy.pid!)
        assert.strictEqual((yield* linksIn(ns)).filter(isPawsTap).length, 3)
        assert.strictEqual((yield* tablesIn(ns)).filter(isPawsTable).length, 3)

        ran.length = 0
        const torn = yield* teardown.teardownAll
        assert.deepStrictEqual(torn, { qemu: 1, proxies: 1, taps: 3, tables: 3 })
        assert.strictEqual(yield* Effect.promise(() => vmExit), "SIGKILL")
        assert.strictEqual(yield* Effect.promise(() => proxyExit), "SIGTERM")
        assert.deepStrictEqual(ran.map((c) => c.split(" ").filter((w) => w === "nft" || w === "ip").at(-1)), [
          "nft",
          "ip",
        ])
        assert.deepStrictEqual((yield* linksIn(ns)).filter(isPawsTap), [])
        assert.deepStrictEqual((yield* tablesIn(ns)).filter(isPawsTable), [])
        assert.isTrue(teardown.draining())

        // Each session's own release (its scope closing) finds nothing left to delete.
        ran.length = 0
        yield* Scope.close(sessions, Exit.void)
        assert.deepStrictEqual(ran, [])
      }).pipe(Effect.provide(nodeNet(ns, ran)))
    })))
})
