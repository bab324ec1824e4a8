import { assert, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { SnapshotBuildDispatch, SnapshotBuildEvent } from "@paws/core"
import { NodeSnapshots } from "../src/snapshot/NodeSnapshots.ts"
import { assertNothingLeft } from "./support/Sessions.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// A private snapshot dir: no other test file ever restores what this one builds.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-node-snapshots-"))
const world = testNodeLayer({ PAWS_SNAPSHOT_DIR: snapshotDir }).pipe(
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

const request = (name: string, extra: Partial<SnapshotBuildDispatch> = {}): SnapshotBuildDispatch => ({
  name,
  base: "default",
  network: { allowOut: [], credentials: {} },
  memoryMB: 256,
  vcpus: 1,
  timeoutMs: 120_000,
  ...extra,
})

layer(world, { excludeTestServices: true, timeout: 180_000 })("NodeSnapshots (real node services)", (it) => {
  it.effect("an unknown base image is refused before anything starts; nothing listed, nothing to remove", () =>
    Effect.gen(function* () {
      const snapshots = yield* NodeSnapshots
      const exit = yield* Effect.exit(Stream.runCollect(snapshots.build(request("x", { base: "no-such-image" }))))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(JSON.stringify(exit), /UnknownSnapshot.*no guest image named/)
      assert.deepStrictEqual(yield* snapshots.list, [])
      assert.isFalse(yield* snapshots.remove("x"))
      yield* assertNothingLeft
    }))

  it.effect("one build per name: a second is busy; the running one is listed with its phase; a caller that goes away stops it and leaves nothing", () =>
    Effect.gen(function* () {
      const snapshots = yield* NodeSnapshots
      const seen: Array<SnapshotBuildEvent> = []
      const fiber = yield* snapshots.build(
        request("busy", { setup: "sleep 600", network: { allowOut: ["api.test"], credentials: {} } }),
      )
        .pipe(Stream.runForEach((e) => Effect.sync(() => void seen.push(e))), Effect.forkChild)
      while (!seen.some((e) => e._tag === "progress" && e.phase === "booted")) yield* Effect.sleep(50)
      const second = yield* Effect.exit(Stream.runCollect(snapshots.build(request("busy"))))
      assert.match(JSON.stringify(second), /SnapshotBusy/)
      const listed = yield* snapshots.list
      assert.strictEqual(listed.length, 1)
      assert.strictEqual(listed[0]!.status, "building")
      assert.isString(listed[0]!.phase)
      assert.match(JSON.stringify(yield* Effect.exit(snapshots.remove("busy"))), /SnapshotBusy/)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(yield* snapshots.list, [])
      assert.isFalse(fs.existsSync(path.join(snapshotDir, "busy")))
      assert.deepStrictEqual(fs.readdirSync(snapshotDir).filter((f) => f.startsWith(".build-")), [])
      yield* assertNothingLeft
    }))

  it.effect("a build past its deadline fails saying so, stays listed as failed, and leaves nothing", () =>
    Effect.gen(function* () {
      const snapshots = yield* NodeSnapshots
      const exit = yield* Effect.exit(
        Stream.runCollect(snapshots.build(request("late", { setup: "sleep 600", timeoutMs: 20_000 }))),
      )
      assert.match(JSON.stringify(exit), /SnapshotBuildFailed.*did not finish within 20000 ms/)
      const listed = yield* snapshots.list
      assert.deepStrictEqual(listed.map((s) => [s.name, s.status]), [["late", "failed"]])
      assert.isTrue(yield* snapshots.remove("late"))
      assert.deepStrictEqual(yield* snapshots.list, [])
      assert.deepStrictEqual(fs.readdirSync(snapshotDir).filter((f) => f.startsWith(".build-")), [])
      yield* assertNothingLeft
    }))
})
