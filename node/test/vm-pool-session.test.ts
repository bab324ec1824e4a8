import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { labelledProcesses } from "../src/network/Reconciler.ts"
import { WarmVmPool } from "../src/warm/WarmVmPool.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"
import { testNodeLayer, TestWorld } from "./support/TestNode.ts"

// A private snapshot dir and a pool of 2 warm clones of its "default" snapshot.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-pool-session-"))
const config = { PAWS_SNAPSHOT_DIR: snapshotDir, PAWS_NODE_VM_POOL: "2" }
const world = SnapshotBuilder.layerNoDeps.pipe(
  Layer.provide(testConfig(config)),
  Layer.provideMerge(testNodeLayer(config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

const secret = `sk-pool-${crypto.randomUUID()}`
const workload = [
  "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo",
  "date +%s",
  "curl -sS -o /dev/null -w '%{http_code}\\n' https://api.test/v1/pooled",
  "env | grep -c sk-pool || true",
].join("\n")

/** The QEMU processes in the node's netns (with no session running: the pool's clones). */
const qemuPids = Effect.gen(function* () {
  const world = yield* TestWorld
  return (yield* labelledProcesses(Option.some(world.netns))).map((p) => p.pid)
})

const waitForIdle = (n: number) =>
  Effect.gen(function* () {
    const pool = yield* WarmVmPool
    for (let i = 0; i < 600; i++) {
      if ((yield* pool.idle) >= n) return
      yield* Effect.sleep(100)
    }
    assert.fail(`the VM pool did not reach ${n} idle clones in 60 s`)
  })

layer(world, { excludeTestServices: true, timeout: 240_000 })("sessions from the warm VM pool (real VMs)", (it) => {
  it.effect("a session takes a paused clone, gets its own entropy, clock and proxy, and the pool refills", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(Effect.gen(function* () {
        const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
        yield* (yield* SnapshotBuilder).build({
          name: "default",
          net: guestNetworkOf(slot),
        })
      }))
      yield* waitForIdle(2)
      const results: Array<{ random: string; clock: number }> = []
      const world = yield* TestWorld
      for (const _ of [1, 2]) {
        const before = yield* qemuPids
        assert.strictEqual(before.length, 2, "two idle clones before the session")
        const { statuses, result } = yield* runToEnd(dispatchOf(workload, {
          network: { allowOut: ["api.test"], credentials: { "api.test": { headers: { "x-api-key": secret } } } },
        }))
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
        const [random, clock, http, leaked] = result.stdout.trim().split("\n")
        assert.match(random!, /^[0-9a-f]{32}$/)
        assert.isAtMost(Math.abs(Number(clock) - Date.now() / 1000), 5, "the clone's clock is set at hand-out")
        assert.strictEqual(http, "200", "the pooled slot's firewall was opened to this session's proxy")
        assert.strictEqual(leaked, "0")
        results.push({ random: random!, clock: Number(clock) })
        // The session ran in one of the pooled clones: that QEMU ended with the session.
        const after = yield* qemuPids
        assert.strictEqual(before.filter((pid) => !after.includes(pid)).length, 1, JSON.stringify({ before, after }))
        yield* waitForIdle(2)
      }
      assert.notStrictEqual(results[0]!.random, results[1]!.random, "two clones of one snapshot share no randomness")
      const pooledRequests = world.received.filter((r) => r.url === "/v1/pooled")
      assert.strictEqual(pooledRequests.length, 2)
      assert.isTrue(pooledRequests.every((r) => r.headers["x-api-key"] === secret), "credential injected")
    }))
})
