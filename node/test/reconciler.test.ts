import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { HostCommand } from "../src/HostCommand.ts"
import { labelledProcesses, Reconciler } from "../src/network/Reconciler.ts"
import { hostCommandIn, linksIn, sh, tablesIn, testNetns } from "./support/TestNet.ts"

const orphan = "0190f000-0000-7000-8000-00000000abcd"
const live = "0190f000-0000-7000-8000-00000000beef"

/** A sleeping process in the netns, optionally labelled; killed by PID at the end whatever happens. */
const sleeper = (ns: string, sessionId?: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn("ip", ["netns", "exec", ns, "sleep", "60"], {
        stdio: "ignore",
        env: sessionId ? { ...process.env, PAWS_SESSION_ID: sessionId } : process.env,
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL")),
  ).pipe(Effect.tap(() => Effect.sleep("200 millis")))

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return !isZombie(pid)
  } catch {
    return false
  }
}
const isZombie = (pid: number) => {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return true
  }
}

describe("Reconciler", () => {
  it.live("removes labelled TAPs, tables and processes that no live session owns, and nothing else", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* testNetns("rec")
      const tap = (id: string) => `pw${id.replace(/-/g, "").slice(-12)}`
      const table = (id: string) => `paws_${id.replace(/-/g, "")}`
      for (const id of [orphan, live]) {
        yield* sh(["ip", "-n", ns, "tuntap", "add", "dev", tap(id), "mode", "tap"])
        yield* sh(["ip", "-n", ns, "link", "set", "dev", tap(id), "alias", `paws-session=${id}`])
        yield* sh(["ip", "netns", "exec", ns, "nft", "add", "table", "inet", table(id)])
      }
      yield* sh(["ip", "-n", ns, "tuntap", "add", "dev", "other0", "mode", "tap"])
      yield* sh(["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "somebody_else"])
      const orphanProc = yield* sleeper(ns, orphan)
      const liveProc = yield* sleeper(ns, live)
      const plainProc = yield* sleeper(ns)
      // QEMU's label is its -name; a stand-in process with the same argv shape.
      const qemuLike = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn("ip", ["netns", "exec", ns, "sh", "-c", "sleep 60", "-name", `paws-${orphan}`], { stdio: "ignore" })
        ),
        (child) => Effect.sync(() => child.kill("SIGKILL")),
      ).pipe(Effect.tap(() => Effect.sleep("200 millis")))
      const found = yield* labelledProcesses(hostCommandIn(ns).netns)
      assert.sameMembers(found.map((p) => p.pid), [orphanProc.pid!, liveProc.pid!, qemuLike.pid!])

      const reconciler = yield* Reconciler.pipe(
        Effect.provide(Reconciler.layerNoDeps.pipe(Layer.provide(Layer.succeed(HostCommand, hostCommandIn(ns))))),
      )
      const removed = yield* reconciler.reconcile(new Set([live]))
      assert.deepStrictEqual(removed.taps, [tap(orphan)])
      assert.deepStrictEqual(removed.tables, [table(orphan)])
      assert.sameMembers([...removed.pids], [orphanProc.pid!, qemuLike.pid!])
      yield* Effect.sleep("100 millis")
      assert.isFalse(alive(orphanProc.pid!))
      assert.isFalse(alive(qemuLike.pid!))
      assert.isTrue(alive(liveProc.pid!))
      assert.isTrue(alive(plainProc.pid!))
      assert.sameMembers((yield* linksIn(ns)).filter((l) => l !== "lo"), [tap(live), "other0"])
      assert.sameMembers(yield* tablesIn(ns), [table(live), "somebody_else"])

      // At start no session is live: everything labelled goes.
      const second = yield* reconciler.reconcile(new Set())
      assert.deepStrictEqual(second, { taps: [tap(live)], tables: [table(live)], pids: [liveProc.pid!] })
    })))
})
