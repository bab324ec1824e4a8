import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// A private snapshot dir: other test files keep cold-booting the shared test image.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-snapshot-session-"))
const config = { PAWS_SNAPSHOT_DIR: snapshotDir }
const world = SnapshotBuilder.layerNoDeps.pipe(
  Layer.provide(testConfig(config)),
  Layer.provideMerge(testNodeLayer(config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

const script = `
cat /root/marker
echo "now=$(date +%s)"
echo "rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')"
ip -4 addr show eth0 | grep -o 'inet [0-9./]*'
curl -sS -o /dev/null -w 'api=%{http_code}\\n' https://api.test/v1/messages
`

layer(world, { excludeTestServices: true, timeout: 240_000 })("sessions restored from a snapshot (real VMs)", (it) => {
  it.effect("every session of the default snapshot restores it: setup state, own address, clock, randomness, proxy", () =>
    Effect.gen(function* () {
      const builder = yield* SnapshotBuilder
      yield* Effect.scoped(Effect.gen(function* () {
        const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
        yield* builder.build({
          name: "default",
          setup: "echo restored-from-snapshot > /root/marker",
          net: guestNetworkOf(slot),
        })
      }))
      yield* Effect.sleep(2000)
      const run = () => runToEnd(dispatchOf(script, { network: { allowOut: ["api.test"], credentials: {} } }))
      const started = Date.now() / 1000
      const [a, b] = yield* Effect.all([run(), run()], { concurrency: 2 })
      const ended = Date.now() / 1000
      const seen = [a, b].map(({ statuses, result }) => {
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
        const lines = result.stdout.trim().split("\n")
        assert.strictEqual(lines[0], "restored-from-snapshot")
        // the guest clock was set at restore, not left where the snapshot stopped it
        const guestNow = Number(lines[1]!.slice(4))
        assert.isAtLeast(guestNow, Math.floor(started) - 1)
        assert.isAtMost(guestNow, ended + 1)
        assert.strictEqual(lines[4], "api=200")
        return { rand: lines[2]!, inet: lines[3]! }
      })
      assert.notStrictEqual(seen[0]!.rand, seen[1]!.rand)
      assert.notStrictEqual(seen[0]!.inet, seen[1]!.inet) // each clone moved to its own slot
      // A daemon invocation's /input, written by the restored guest's agent before the workload.
      const daemon = yield* runToEnd(dispatchOf('echo "trigger=$PAWS_TRIGGER"; ls -l /input; cat /input/event.json', {
        input: { files: { "event.json": '{"kind":"cron","tick":"2026-01-01T00:00:00.000Z"}' }, trigger: "cron" },
      }))
      assert.deepStrictEqual(daemon.statuses, ["starting", "running", "completed"], JSON.stringify(daemon.result))
      const out = daemon.result.stdout
      assert.include(out, "trigger=cron")
      assert.include(out, '{"kind":"cron","tick":"2026-01-01T00:00:00.000Z"}')
      assert.match(out, /-rw-r--r-- .* event\.json/)
      yield* assertNothingLeft
    }))

  it.effect("a session whose resources differ from the snapshot's cold-boots the image", () =>
    Effect.gen(function* () {
      const { statuses, result } = yield* runToEnd(
        dispatchOf("cat /root/marker 2>/dev/null || echo cold", { resources: { vcpus: 1, memoryMB: 192 } }),
      )
      assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result))
      assert.strictEqual(result.stdout, "cold\n")
    }))
})
