import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { assertNothingLeft, dispatchOf } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// Exec and files into a session restored from a snapshot: the guest channel is the virtio-serial
// agent (paws-agent.c), not SSH (clients/test/e2e-live.test.ts covers cold-booted VMs over SSH).
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-live-agent-"))
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

const text = (chunks: ReadonlyArray<{ _tag: string; data?: Uint8Array }>, tag: string) =>
  chunks.filter((c) => c._tag === tag).map((c) => Buffer.from(c.data!).toString()).join("")

layer(world, { excludeTestServices: true, timeout: 240_000 })("live session over the guest agent (real VM)", (it) => {
  it.effect("an interactive restored session: exec with stdin and exit codes, files in and out, symlinks out refused", () =>
    Effect.gen(function* () {
      const builder = yield* SnapshotBuilder
      yield* Effect.scoped(Effect.gen(function* () {
        const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
        yield* builder.build({ name: "default", setup: "true", net: guestNetworkOf(slot) })
      }))
      const sessions = yield* LiveSessions
      const dispatch = dispatchOf("", { workload: { type: "interactive", env: { LIVE: "agent" } }, timeoutMs: 600_000 })
      const running = yield* Deferred.make<void>()
      const events = yield* sessions.run(dispatch).pipe(
        Stream.tap((e) =>
          e._tag === "status" && e.status === "running" ? Deferred.succeed(running, undefined) : Effect.void
        ),
        Stream.runCollect,
        Effect.forkChild,
      )
      yield* Deferred.await(running)
      const id = dispatch.sessionId

      const ran = Array.from(
        yield* Stream.runCollect(sessions.exec(id, ["sh", "-c", "echo $LIVE; cat; echo e >&2; exit 4"], "in\n")),
      )
      assert.strictEqual(text(ran, "stdout"), "agent\nin\n")
      assert.strictEqual(text(ran, "stderr"), "e\n")
      assert.deepStrictEqual(ran.at(-1), { _tag: "exit", exitCode: 4 })

      const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 256)
      yield* sessions.writeFile(id, "/work/a/b.bin", bytes)
      assert.deepStrictEqual(yield* sessions.readFile(id, "/work//a/b.bin"), bytes)
      const missing = yield* Effect.flip(sessions.readFile(id, "/tmp/none"))
      assert.strictEqual(missing._tag === "LiveSessionError" ? missing.reason : missing._tag, "not_found")
      yield* Stream.runDrain(sessions.exec(id, ["ln", "-s", "/etc", "/work/out"], undefined))
      const out = yield* Effect.flip(sessions.readFile(id, "/work/out/passwd"))
      assert.strictEqual(out._tag === "LiveSessionError" ? out.reason : out._tag, "outside_roots")
      const escape = yield* Effect.flip(sessions.writeFile(id, "/work/out/evil", new Uint8Array([1])))
      assert.strictEqual(escape._tag === "LiveSessionError" ? escape.reason : escape._tag, "outside_roots")

      yield* sessions.cancel(id)
      const all = yield* Fiber.join(events)
      const statuses = Array.from(all).flatMap((e) => (e._tag === "status" ? [e.status] : []))
      assert.deepStrictEqual(statuses, ["starting", "running", "cancelled"])
      const after = yield* Effect.exit(sessions.readFile(id, "/work/a/b.bin"))
      assert.isTrue(Exit.isFailure(after))
      yield* assertNothingLeft
    }))
})
