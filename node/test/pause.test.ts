import { assert, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId, type SessionDispatch } from "@paws/core"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig, testDataDir } from "./support/TestImage.ts"
import { testNodeLayer, TestWorld } from "./support/TestNode.ts"

// Pause and resume with real VMs: a live session restored from a snapshot is saved to the node's
// disk and released, and restored from there (a fresh LiveSessions, as after a node restart).
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-pause-"))
const pausedDir = path.join(dataDir, "paused")
const config = {
  PAWS_DATA_DIR: dataDir,
  PAWS_IMAGE_DIR: path.join(testDataDir, "images"),
  PAWS_NODE_SSH_KEY: path.join(testDataDir, "keys", "node_ed25519"), // the key the shared image trusts
  PAWS_SNAPSHOT_DIR: path.join(dataDir, "snapshots"),
  PAWS_NODE_MAX_VMS: "1", // the paused session must free the node's only slot
  PAWS_NODE_IDLE_PAUSE_SECONDS: "20", // the last resume below is left idle until it pauses by itself
}
const world = SnapshotBuilder.layerNoDeps.pipe(
  Layer.provide(testConfig(config)),
  Layer.provideMerge(testNodeLayer(config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true }))),
    ),
  ),
)

const text = (chunks: ReadonlyArray<{ _tag: string; data?: Uint8Array }>) =>
  chunks.filter((c) => c._tag === "stdout").map((c) => Buffer.from(c.data!).toString()).join("")

const credential = (token: string): SessionDispatch["network"] => ({
  allowOut: ["api.test"],
  credentials: { "api.test": { headers: { "x-api-key": token } } },
})

/** Runs `dispatch` in the background until it reports `running`; the fiber ends with its statuses. */
const started = (sessions: LiveSessions["Service"], dispatch: SessionDispatch) =>
  Effect.gen(function* () {
    const running = yield* Deferred.make<void>()
    const fiber = yield* sessions.run(dispatch).pipe(
      Stream.tap((e) =>
        e._tag === "status" && e.status === "running" ? Deferred.succeed(running, undefined) : Effect.void
      ),
      Stream.runCollect,
      Effect.map((events) => Array.from(events).flatMap((e) => (e._tag === "status" ? [e.status] : []))),
      Effect.forkChild,
    )
    yield* Deferred.await(running).pipe(Effect.raceFirst(Fiber.join(fiber)))
    return fiber
  })

const sh = (sessions: LiveSessions["Service"], id: string, script: string) =>
  Stream.runCollect(sessions.exec(id, ["sh", "-c", script], undefined)).pipe(Effect.map((c) => text(Array.from(c))))

/** A LiveSessions with no memory of earlier ones (what a restarted node has), over the same node. */
const freshLiveSessions = Effect.gen(function* () {
  const context = yield* Effect.context<LiveSessions>()
  const built = yield* Layer.build(
    LiveSessions.layer.pipe(Layer.provide(Layer.succeedContext(context)), Layer.provide(testConfig(config))),
  ).pipe(Effect.orDie)
  return Context.get(built, LiveSessions)
})

layer(world, { excludeTestServices: true, timeout: 300_000 })("pause and resume (real VMs)", (it) => {
  it.effect(
    "pause saves a live VM and frees the node's only slot; resume (fresh node state) keeps files and a counting process, reseeds, and injects the rotated credential; an idle session pauses by itself",
    () =>
      Effect.gen(function* () {
        yield* Effect.scoped(Effect.gen(function* () {
          const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
          yield* (yield* SnapshotBuilder).build({ name: "default", setup: "true", net: guestNetworkOf(slot) })
        }))
        const sessions = yield* LiveSessions
        const world = yield* TestWorld
        const interactive = dispatchOf("", {
          workload: { type: "interactive" },
          timeoutMs: 600_000,
          network: credential("tok-before-rotation"),
        })
        const id = interactive.sessionId
        const first = yield* started(sessions, interactive)

        // Not pausable while it runs a script; an unknown id is not found.
        const unknown = yield* Effect.flip(sessions.pause(newSessionId()))
        assert.strictEqual(unknown._tag, "NodeSessionNotFound")

        // On the guest's disk (its qcow2 overlay), not in memory: the disk is saved beside the memory.
        assert.strictEqual(
          yield* sh(sessions, id, "mkdir -p /work && echo kept > /work/before.txt && sync && cat /work/before.txt"),
          "kept\n",
        )
        yield* sh(
          sessions,
          id,
          "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done' </dev/null >/dev/null 2>&1 &",
        )
        yield* Effect.sleep(500)
        const before = yield* sh(sessions, id, "cat /proc/sys/kernel/random/boot_id; cat /tmp/counter")
        const [bootId, counted] = before.trim().split("\n")
        assert.isAbove(Number(counted), 0)
        const curl = "curl -sS -o /dev/null -w '%{http_code}' https://api.test/v1/pause-check"
        assert.strictEqual(yield* sh(sessions, id, curl), "200")

        yield* sessions.pause(id)
        assert.deepStrictEqual(yield* Fiber.join(first), ["starting", "running", "paused"])
        assert.deepStrictEqual(yield* sessions.pausedIds, [id])
        const twice = yield* Effect.flip(sessions.pause(id))
        assert.strictEqual(twice._tag, "NodeSessionNotFound", "a paused session is not live: no second pause")
        assert.deepStrictEqual((yield* sessions.capacity).running, 0)
        yield* assertNothingLeft // VM, proxy, TAP and firewall table of the paused session are gone

        // The only slot is free: another session runs to its end meanwhile.
        const other = yield* runToEnd(dispatchOf("echo meanwhile"))
        assert.deepStrictEqual(other.statuses, ["starting", "running", "completed"], JSON.stringify(other.result))
        assert.strictEqual(other.result.stdout, "meanwhile\n")

        // Kept to resume the same saved VM twice below (the entropy check).
        const copy = `${pausedDir}-copy`
        fs.cpSync(path.join(pausedDir, id), copy, { recursive: true })

        const restarted = yield* freshLiveSessions
        const resumedDispatch = { ...interactive, resume: true, network: credential("tok-after-rotation") }
        const second = yield* started(restarted, resumedDispatch)
        const after = yield* sh(
          restarted,
          id,
          "cat /work/before.txt; cat /proc/sys/kernel/random/boot_id; cat /tmp/counter; date +%s; " +
            "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'",
        )
        const [kept, bootAfter, countedAfter, clock, random1] = after.trim().split("\n")
        assert.strictEqual(kept, "kept")
        assert.strictEqual(bootAfter, bootId, "the same guest (not a new boot)")
        assert.isAtLeast(Number(countedAfter), Number(counted), "the counter carries on from its saved value")
        assert.isBelow(Number(countedAfter), Number(counted) + 100, "it did not count while paused")
        yield* Effect.sleep(300)
        assert.isAbove(Number((yield* sh(restarted, id, "cat /tmp/counter")).trim()), Number(countedAfter))
        assert.approximately(Number(clock), Date.now() / 1000, 5, "the guest clock was set at resume")
        // A fresh proxy (its own CA, trusted by the guest again) carries the credential read now.
        assert.strictEqual(yield* sh(restarted, id, curl), "200")
        const seen = world.received.filter((r) => r.url === "/v1/pause-check").map((r) => r.headers["x-api-key"])
        assert.deepStrictEqual(seen, ["tok-before-rotation", "tok-after-rotation"])

        yield* restarted.cancel(id)
        assert.deepStrictEqual(yield* Fiber.join(second), ["starting", "running", "cancelled"])
        assert.isFalse(fs.existsSync(path.join(pausedDir, id)), "the saved VM goes with the session")

        // The same saved VM resumed once more: the guest's CRNG was reseeded at resume, so the
        // bytes differ although both resumes start from identical memory.
        fs.cpSync(copy, path.join(pausedDir, id), { recursive: true })
        const third = yield* started(restarted, resumedDispatch)
        const random2 = (yield* sh(restarted, id, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")).trim()
        assert.strictEqual(random1!.length, 64)
        assert.strictEqual(random2.length, 64)
        assert.notStrictEqual(random2, random1)
        // Idle (no exec, file, shell or port traffic) for PAWS_NODE_IDLE_PAUSE_SECONDS: it pauses by itself.
        const idleSince = Date.now()
        assert.deepStrictEqual(yield* Fiber.join(third), ["starting", "running", "paused"])
        assert.isAtLeast(Date.now() - idleSince, 19_000, "not before it was idle that long")
        assert.deepStrictEqual(yield* restarted.pausedIds, [id])
        yield* restarted.cancel(id) // a paused session's cancel removes its saved VM
        fs.rmSync(copy, { recursive: true, force: true })
        assert.deepStrictEqual(yield* restarted.pausedIds, [])
        yield* assertNothingLeft
      }),
    300_000,
  )
})
