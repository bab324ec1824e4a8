import { waitUntil } from "../support/WaitUntil.ts"
import type { Kind } from "./SoakPlan.ts"
import { cutSsh, proxyOf, qemuOf } from "./SoakProbe.ts"
import type { SoakLedger } from "./SoakLedger.ts"
import type { SoakStack } from "./SoakStack.ts"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const sleeper = "echo up; sleep 300"

/**
 * The faults the soak injects, one session (or a few) each: `shared` kinds run two at a time,
 * `exclusive` ones need the whole node (queueing, node and control restarts).
 */
export const makeSoakFaults = (
  stack: SoakStack,
  ledger: SoakLedger,
  random: () => number,
  log: (line: string) => void,
) => {
  const pause = () => sleep(Math.floor(random() * 1500))

  const shared = async (kind: Kind): Promise<void> => {
    switch (kind) {
      case "normal": {
        const code = random() < 0.75 ? 0 : 1 + Math.floor(random() * 5)
        const tag = Math.floor(random() * 1e9)
        const id = await stack.submit(`echo soak-${tag}; exit ${code}`)
        return ledger.expect(
          id,
          kind,
          (s) =>
            s.status !== (code === 0 ? "completed" : "failed")
              ? `want ${code === 0 ? "completed" : "failed"} (exit ${code})`
              : s.result?.exitCode !== code
              ? `want exit code ${code}`
              : s.result?.stdout !== `soak-${tag}\n`
              ? "wrong stdout"
              : undefined,
        )
      }
      case "qemu-kill":
      case "proxy-kill":
      case "ssh-cut": {
        const id = await stack.submit(sleeper)
        await stack.running(id)
        await pause()
        if (kind === "ssh-cut") {
          const cut = await cutSsh(stack.world.netns, id)
          if (cut === 0) log(`note: ss -K found no SSH socket of ${id}`)
        } else {
          const pid = kind === "qemu-kill" ? await qemuOf(stack.world.netns, id) : await proxyOf(stack.world.netns, id)
          if (pid === undefined) throw new Error(`${kind}: no process of ${id}`)
          process.kill(pid, "SIGKILL")
        }
        return ledger.expect(id, kind, ledger.is("failed"))
      }
      case "timeout": {
        const timeoutMs = 1000 + Math.floor(random() * 2000)
        const id = await stack.submit(sleeper, timeoutMs)
        return ledger.expect(id, kind, ledger.is("timeout"))
      }
      case "cancel-running": {
        const id = await stack.submit(sleeper)
        await stack.running(id)
        await pause()
        await stack.cancelNow(id)
        return ledger.expect(id, kind, ledger.is("cancelled"))
      }
      case "cancel-starting": {
        // Starting lasts from restore to the guest's SSH (>= ~0.7 s); polled every 20 ms it is seen.
        // Should it be missed anyway, that session counts as cancel-running and another one tries.
        for (let attempt = 0; attempt < 3; attempt++) {
          const id = await stack.submit(sleeper)
          const s = await waitUntil(
            `${id} starting`,
            () => stack.session(id),
            (s) => s.status !== "pending",
            90_000,
            20,
          )
          await stack.cancelNow(id)
          if (s.status === "starting") return ledger.expect(id, kind, ledger.is("cancelled"))
          log(`note: ${id} was ${s.status} when first seen after pending`)
          await ledger.expect(id, "cancel-running", ledger.is("cancelled"))
        }
        throw new Error("cancel-starting: never saw a session in starting")
      }
    }
  }

  const exclusive = async (kind: Kind): Promise<void> => {
    switch (kind) {
      case "cancel-pending": {
        // Both VM slots busy: the third session stays in the queue until it is cancelled there.
        const busy = [await stack.submit(sleeper), await stack.submit(sleeper)]
        for (const b of busy) await stack.running(b)
        const queued = await stack.submit("echo never")
        await sleep(500)
        const before = await stack.session(queued)
        if (before.status !== "pending") throw new Error(`queued session is ${before.status}`)
        await stack.cancelNow(queued)
        await ledger.expect(queued, "cancel-pending", ledger.is("cancelled"))
        for (const b of busy) {
          await stack.cancelNow(b)
          await ledger.expect(b, "cancel-running", ledger.is("cancelled"))
        }
        return
      }
      case "node-kill": {
        const id = await stack.submit(sleeper)
        await stack.running(id)
        await pause()
        await stack.node()!.kill("SIGKILL")
        await ledger.expect(
          id,
          kind,
          ledger.is("failed", (s) => (s.reason === "node_lost" ? undefined : "want reason node_lost")),
          false,
        )
        await waitUntil("node unregistered", stack.nodeIds, (ids) => ids.length === 0, 20_000)
        // Queued while no node is there; runs once the restarted node has reconciled.
        const queued = await stack.submit("echo after-restart")
        await sleep(300)
        const q = await stack.session(queued)
        if (q.status !== "pending") throw new Error(`queued with no node: ${q.status}`)
        await stack.startNode()
        await ledger.released(id, kind)
        await ledger.expect(
          queued,
          "queued-over-node-restart",
          (s) =>
            s.status !== "completed" || s.result?.stdout !== "after-restart\n"
              ? "want completed after-restart"
              : undefined,
        )
        return
      }
      case "control-restart": {
        const busy = [await stack.submit(sleeper), await stack.submit(sleeper)]
        for (const b of busy) await stack.running(b)
        const queued = await stack.submit("echo queued")
        await stack.control()!.kill("SIGTERM")
        // Cut off from control, the node stops the sessions control can no longer track.
        for (const b of busy) await ledger.released(b, kind, 40_000)
        await stack.startControl()
        for (const b of busy) await ledger.expect(b, kind, ledger.is("failed"))
        await ledger.expect(
          queued,
          "queued-over-control-restart",
          (s) => s.status !== "completed" || s.result?.stdout !== "queued\n" ? "want completed queued" : undefined,
        )
        return
      }
    }
  }

  return { shared, exclusive }
}
