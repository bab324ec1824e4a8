import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { HostCommand } from "../src/HostCommand.ts"
import { NodeConfig } from "../src/NodeConfig.ts"
import { reconcileWarmProxies, warmProxyEnvVar, WarmProxyPool } from "../src/warm/WarmProxyPool.ts"
import { ProxyStarter } from "../src/proxy/ProxyStarter.ts"
import { makeNetns } from "./support/Netns.ts"
import { assertUnprivileged } from "./support/ProxyPrivileges.ts"
import { sh } from "./support/TestNet.ts"
import { testConfig } from "./support/TestImage.ts"

const hostIp = "172.16.0.1"

/** Pids in the netns that carry the pool label. */
const pooled = (netns: string) =>
  sh(["ip", "netns", "pids", netns]).pipe(
    Effect.map((out) =>
      out.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/environ`, "utf8").includes(`${warmProxyEnvVar}=`)
        } catch {
          return false
        }
      })
    ),
  )

/** The warm pool, or (`direct`) a proxy per start, in `netns`. */
const startersIn = (netns: string, size: number) => {
  const deps = <A, E, R>(layer: Layer.Layer<A, E, R>) =>
    layer.pipe(
      Layer.provide(Layer.succeed(HostCommand, HostCommand.make(Option.some(netns)))),
      Layer.provide(NodeConfig.layerWith({ netns: Option.some(netns) })),
      Layer.provide(testConfig({ PAWS_NODE_WARM_POOL: String(size) })),
    )
  return { warm: deps(WarmProxyPool), direct: deps(ProxyStarter.direct) }
}

const waitFor = <A>(check: Effect.Effect<A>, ok: (a: A) => boolean, ms = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* check
      if (ok(a) || Date.now() > deadline) return a
      yield* Effect.sleep(50)
    }
  })

const start = (pool: ProxyStarter["Service"]) =>
  pool.start({ sessionId: "s", hostIp, allowOut: ["api.test"], credentials: {}, onAudit: () => {} })

describe("warm proxy pool", () => {
  it.live(
    "keeps proxies waiting, hands each out once, refills, and stops them all on shutdown",
    () =>
      Effect.gen(function* () {
        const netns = yield* makeNetns("pool")
        yield* sh(["ip", "-n", netns, "addr", "add", `${hostIp}/32`, "dev", "lo"])
        // a pooled proxy left by a previous node process: removed when a pool starts
        const stale = spawn("ip", ["netns", "exec", netns, "sleep", "300"], {
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [warmProxyEnvVar]: "stale" },
          stdio: "ignore",
        })
        yield* waitFor(pooled(netns), (p) => p.length === 1)

        const outcome = yield* Effect.scoped(Effect.gen(function* () {
          const starters = startersIn(netns, 2)
          const pool = Context.get(yield* Layer.build(starters.warm), ProxyStarter)
          const supervisor = Context.get(yield* Layer.build(starters.direct), ProxyStarter)
          const staleGone = yield* waitFor(
            Effect.sync(() => stale.exitCode !== null || stale.signalCode !== null),
            (x) => x,
          )
          assert.isTrue(staleGone)
          assert.strictEqual(yield* pool.idle, 2)
          const waiting = yield* waitFor(pooled(netns), (p) => p.length === 2)
          assert.strictEqual(waiting.length, 2)
          yield* Effect.sleep(1500) // let the waiting proxies finish loading, as they would between sessions

          const t0 = performance.now()
          const [a, b] = yield* Effect.all([start(pool), start(pool)], { concurrency: 2 })
          const warmMs = performance.now() - t0
          assert.notStrictEqual(a.pid, b.pid) // never handed out twice
          assert.isTrue(waiting.includes(a.pid) && waiting.includes(b.pid))
          assert.include(a.caCertificatePem, "BEGIN CERTIFICATE")
          assert.isAbove(a.ports.https, 0)
          // Pooled proxies are as unprivileged as the supervisor's, each with a uid of its own.
          assert.notStrictEqual(assertUnprivileged(a.pid), assertUnprivileged(b.pid))
          // refilled in the background with fresh processes
          const refilled = yield* waitFor(pooled(netns), (p) => p.length === 4)
          assert.strictEqual(refilled.length, 4)

          const t1 = performance.now()
          yield* Effect.scoped(
            supervisor.start({ sessionId: "s2", hostIp, allowOut: [], credentials: {}, onAudit: () => {} }),
          )
          const coldMs = performance.now() - t1
          return { warmMs, coldMs }
        }))
        yield* Effect.logInfo(
          `two warm proxies ready in ${Math.round(outcome.warmMs)} ms; one cold in ${Math.round(outcome.coldMs)} ms`,
        )
        // shutdown stopped the idle ones and the ones in use
        assert.deepStrictEqual(yield* waitFor(pooled(netns), (p) => p.length === 0), [])
        assert.deepStrictEqual(yield* reconcileWarmProxies(Option.some(netns)), [])
      }).pipe(Effect.scoped),
    60_000,
  )
})
