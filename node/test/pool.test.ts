import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { HostCommand } from "../src/network/HostCommand.ts"
import { NodeConfig } from "../src/NodeConfig.ts"
import { poolEnvVar, ProxyPool, reconcilePool } from "../src/pool/ProxyPool.ts"
import { ProxySupervisor } from "../src/proxy/ProxySupervisor.ts"
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
          return readFileSync(`/proc/${pid}/environ`, "utf8").includes(`${poolEnvVar}=`)
        } catch {
          return false
        }
      })
    ),
  )

const poolIn = (netns: string, size: number) =>
  Layer.mergeAll(ProxyPool.layerNoDeps, ProxySupervisor.layerNoDeps).pipe(
    Layer.provide(Layer.succeed(HostCommand, HostCommand.make(Option.some(netns)))),
    Layer.provide(NodeConfig.layerWith({ netns: Option.some(netns) })),
    Layer.provide(testConfig({ PAWS_NODE_WARM_POOL: String(size) })),
  )

const waitFor = <A>(check: Effect.Effect<A>, ok: (a: A) => boolean, ms = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* check
      if (ok(a) || Date.now() > deadline) return a
      yield* Effect.sleep(50)
    }
  })

const start = (pool: ProxyPool["Service"]) =>
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
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [poolEnvVar]: "stale" },
          stdio: "ignore",
        })
        yield* waitFor(pooled(netns), (p) => p.length === 1)

        const outcome = yield* Effect.scoped(Effect.gen(function* () {
          const ctx = yield* Layer.build(poolIn(netns, 2))
          const pool = Context.get(ctx, ProxyPool)
          const supervisor = Context.get(ctx, ProxySupervisor)
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
        assert.deepStrictEqual(yield* reconcilePool(Option.some(netns)), [])
      }).pipe(Effect.scoped),
    60_000,
  )
})
