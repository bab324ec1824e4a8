import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Option, Schedule, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import type { SessionDispatch } from "@paws/core"
import { connectGuestShell } from "../src/guest/GuestShell.ts"
import type { GuestShell } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { agentShell } from "../src/guest/AgentShell.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { SnapshotRestore } from "../src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../src/snapshot/SnapshotStore.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// A root workload attacks the node through the channel it is collected over: it replaces the
// `cat` the node reads result.json with, floods its output, or kills the guest agent and writes
// forged frames to the virtio-serial port itself. The node's memory must stay within its caps.

const capBytes = 65_536
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-guest-flood-"))
const config = {
  PAWS_SNAPSHOT_DIR: snapshotDir,
  PAWS_NODE_RESULT_CAP_BYTES: String(capBytes),
  PAWS_NODE_OUTPUT_CAP_BYTES: String(capBytes),
}
const world = SnapshotBuilder.layerNoDeps.pipe(
  Layer.provide(testConfig(config)),
  Layer.provideMerge(testNodeLayer(config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

/**
 * The node's RSS may not grow by more than this during one hostile session. The caps are 64 KiB
 * (output, result) plus 1 MiB of undelivered exec output and ssh2's 2 MiB window; the rest is room
 * for the node's ordinary work (its heap grows a little with every session). Unbounded collection
 * passes it within seconds.
 */
const rssBoundBytes = 64 * 1024 * 1024

/** Runs `effect` while sampling the node's (this process's) RSS; fails once it grew past `bound`. */
const watchingRss = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>, bound = rssBoundBytes) =>
  Effect.gen(function* () {
    const base = process.memoryUsage.rss()
    let peak = base
    const watch = Effect.suspend(() => {
      peak = Math.max(peak, process.memoryUsage.rss())
      return peak - base > bound
        ? Effect.fail(new Error(`node RSS grew by ${Math.round((peak - base) / 1048576)} MiB during ${what}`))
        : Effect.void
    }).pipe(Effect.repeat(Schedule.spaced(100)), Effect.andThen(Effect.never))
    const result = yield* effect.pipe(Effect.raceFirst(watch))
    yield* Effect.logInfo(`node RSS grew by ${Math.round((peak - base) / 1048576)} MiB (peak) during ${what}`)
    return result
  })

/** Runs a session to its end within the RSS bound. */
const runWatched = (dispatch: SessionDispatch) => watchingRss(`session ${dispatch.sessionId}`, runToEnd(dispatch))

/** The session's last status event's reason. */
const reasonOf = (run: Effect.Success<ReturnType<typeof runToEnd>>) => {
  const last = run.events.at(-1)
  return last?._tag === "status" ? last.reason ?? "" : ""
}

/**
 * Replaces the guest's /bin/sh (the guest's busybox runs `cat` as a built-in applet, so the shell
 * is what reads result.json): every command that mentions result.json runs `body` instead. A
 * valid result is written first, so only the reading misbehaves.
 */
const hostileShell = (body: string) =>
  [
    `echo '{"ok":true}' > /output/result.json`,
    `rm -f /bin/sh`,
    `printf '#!/bin/busybox sh\ncase "$*" in *result.json*) ${body};; esac\nexec /bin/busybox sh "$@"\n' > /bin/sh`,
    `chmod 755 /bin/sh`,
  ].join("\n")
const endlessCat = hostileShell("exec /bin/busybox yes 0123456789abcdef0123456789abcdef0123456789abcdef")
/** 8 MB of stdout and some stderr first: the output is cut at the cap, never buffered whole. */
const outputFlood =
  "yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | head -c 8000000; echo err >&2"

/** 3000 one-byte writes: each may arrive as its own chunk, none may become its own event. */
const tinyWrites = "i=0; while [ $i -lt 3000 ]; do printf y; i=$((i+1)); done"

/** The "default" snapshot, built once: from then on sessions restore it and talk to its agent. */
const ensureSnapshot = Effect.gen(function* () {
  const store = yield* SnapshotStore
  if (Option.isNone(yield* store.find("default"))) {
    yield* Effect.scoped(Effect.gen(function* () {
      const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
      yield* (yield* SnapshotBuilder).build({ name: "default", net: guestNetworkOf(slot) })
    }))
  }
  return Option.getOrThrow(yield* store.find("default"))
})

/** A session that must still work on the node afterwards. */
const assertNodeStillWorks = Effect.gen(function* () {
  const script = `echo fine; echo '{"after":true}' > /output/result.json`
  const after = yield* runToEnd(dispatchOf(script))
  assert.deepStrictEqual(after.statuses, ["starting", "running", "completed"], after.result.error)
  assert.strictEqual(after.result.stdout, "fine\n")
  assert.deepStrictEqual(after.result.output, { after: true })
})

layer(world, { excludeTestServices: true, timeout: 300_000 })(
  "a hostile guest cannot exhaust the node (real VMs)",
  (it) => {
    /** The workload floods its output, then the node's read of result.json streams endlessly. */
    const endlessResult = Effect.gen(function* () {
      const started = Date.now()
      const flood = yield* runWatched(dispatchOf(`${tinyWrites}\n${outputFlood}\n${endlessCat}`))
      // Output events are queued for subscribers: their number is bounded by time (one per
      // stream per 50 ms), not by how the guest chops its writes.
      const outputEvents = flood.events.filter((e) => e._tag === "output").length
      yield* Effect.logInfo(`${outputEvents} output events in ${Date.now() - started} ms`)
      assert.isAtMost(outputEvents, Math.ceil((Date.now() - started) / 50) * 2 + 2)
      assert.deepStrictEqual(flood.statuses, ["starting", "running", "failed"], flood.result.error)
      assert.strictEqual(
        reasonOf(flood),
        `the guest sent more than the ${capBytes} byte cap for /output/result.json; the node cut it off`,
      )
      assert.strictEqual(flood.result.stdout.length, capBytes)
      assert.isTrue(flood.result.stdout.startsWith(`${"y".repeat(3000)}aaa`))
      assert.isTrue(flood.result.truncated)
      assert.strictEqual(flood.result.stderr, "err\n")
      yield* assertNodeStillWorks
      yield* assertNothingLeft
    })

    it.effect("cold boot (SSH): an output flood and an endless `cat` of result.json end failed within the caps", () =>
      Effect.gen(function* () {
        // An ordinary session first: the node's one-time growth (modules, JIT) is not the guest's.
        yield* assertNodeStillWorks
        yield* endlessResult
      }))

    it.effect(
      "cold boot (SSH): a `cat` of result.json that never answers ends failed at the node's deadline",
      () =>
        Effect.gen(function* () {
          const stalled = yield* runWatched(dispatchOf(hostileShell("exec /bin/busybox sleep 1000")))
          assert.deepStrictEqual(stalled.statuses, ["starting", "running", "failed"], stalled.result.error)
          assert.strictEqual(reasonOf(stalled), "reading /output/result.json took longer than 10000 ms")
          yield* assertNodeStillWorks
          yield* assertNothingLeft
        }),
      90_000,
    )

    it.effect("restored (agent): an output flood and an endless `cat` of result.json end failed within the caps", () =>
      Effect.gen(function* () {
        yield* ensureSnapshot
        yield* endlessResult
      }))

    it.effect("restored (agent): forged frames flooding the agent's port are read within the rate and in-flight caps", () =>
      Effect.gen(function* () {
        // Root kills the agent and writes endless tiny, well-formed frames ("x\n" on stdout) to the
        // port: the node reads them no faster than its message rate and no further than its
        // in-flight bound, and the session ends at its deadline.
        const forged = [
          "exec >/dev/null 2>&1",
          'for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = paws.ctl ] && dev=/dev/${p##*/}; done',
          'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = paws-agent ] && kill -KILL ${p#/proc/}; done',
          "sleep 0.3; exec 3<>$dev",
          `yes "$(printf 'o 2\\nx')" >&3`,
        ].join("\n")
        const forging = yield* runWatched(dispatchOf(forged, { timeoutMs: 8_000 }))
        assert.deepStrictEqual(forging.statuses, ["starting", "running", "timeout"], forging.result.error)
        assert.strictEqual(reasonOf(forging), "timed out after 8000 ms")
        assert.strictEqual(forging.result.stdout, "x\n".repeat(capBytes / 2))
        assert.isTrue(forging.result.truncated)
        yield* assertNodeStillWorks
        yield* assertNothingLeft
      }))

    it.effect(
      "an exec whose reader stalls holds the guest back instead of buffering its output (SSH and agent)",
      () =>
        Effect.gen(function* () {
          const snapshot = yield* ensureSnapshot
          const sessionId = newSessionId()
          const slot = yield* (yield* NetworkSlot).acquire(sessionId)
          const { agent } = yield* (yield* SnapshotRestore).restore(snapshot, {
            sessionId,
            tap: slot.tap,
            guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
            gateway: slot.hostIp,
            dns: slot.hostIp,
          })
          const ssh = yield* connectGuestShell({
            dialer: yield* NetnsDialer,
            host: slot.guestIp,
            hostKeyBlob: snapshot.image.hostKeyBlob,
            privateKey: (yield* NodeSshKey).privateKey,
            readyTimeoutMs: 20_000,
          })
          const channels: ReadonlyArray<readonly [string, GuestShell]> = [["SSH", ssh], ["agent", agentShell(agent)]]
          for (const [name, shell] of channels) {
            // The reader takes one chunk every 4 s while the guest writes as fast as it can.
            const chunks = yield* watchingRss(
              `a stalled read over ${name}`,
              shell.exec("exec yes 0123456789abcdef0123456789abcdef", { profile: false }).pipe(
                Stream.mapEffect((event) => Effect.sleep(4_000).pipe(Effect.as(event))),
                Stream.take(2),
                Stream.runCollect,
              ),
              32 * 1024 * 1024,
            )
            assert.strictEqual(Array.from(chunks).length, 2)
            // the abandoned command was killed: the channel answers at once
            const after = yield* shell.run("echo alive", { profile: false })
            assert.strictEqual(after.stdout, "alive\n")
          }
        }).pipe(Effect.scoped),
      120_000,
    )
  },
)
