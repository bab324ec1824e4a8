import { Effect } from "effect"
import type { Scope } from "effect"
import { runHostCommand } from "../../src/HostCommand.ts"

const ip = (...args: Array<string>) => runHostCommand("ip", args).pipe(Effect.orDie)

/**
 * A fresh `paws-t-<random>` network namespace with `lo` up. On release every process still
 * inside it (all ours: the namespace is new) is SIGKILLed by PID, then the namespace is deleted.
 */
export const makeNetns = (label = "t"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const name = `paws-${label}-${Math.random().toString(16).slice(2, 10)}`
      yield* ip("netns", "add", name)
      yield* ip("-n", name, "link", "set", "lo", "up")
      return name
    }),
    (name) =>
      Effect.gen(function* () {
        const pids = yield* runHostCommand("ip", ["netns", "pids", name]).pipe(
          Effect.map((r) => r.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number)),
          Effect.orElseSucceed(() => [] as Array<number>),
        )
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL")
          } catch { /* already gone */ }
        }
        yield* runHostCommand("ip", ["netns", "del", name]).pipe(Effect.ignore)
      }),
  )

export interface TestTap {
  readonly tap: string
  readonly hostIp: string
  readonly guestIp: string
  readonly guestCidr: string
  readonly guestMac: string
}

/**
 * The minimal TAP a VM test needs (the product's NetworkSlot does this for real): fixed host
 * MAC, host end of a /30, permanent neighbour entry for the guest (no ARP retries while it boots).
 */
export const addTestTap = (netns: string, index = 0): Effect.Effect<TestTap> =>
  Effect.gen(function* () {
    const hex = (n: number) => n.toString(16).padStart(2, "0")
    const t: TestTap = {
      tap: `tap${index}`,
      hostIp: `172.16.0.${4 * index + 1}`,
      guestIp: `172.16.0.${4 * index + 2}`,
      guestCidr: `172.16.0.${4 * index + 2}/30`,
      guestMac: `52:54:00:00:00:${hex(index + 2)}`,
    }
    const tap = t.tap
    yield* ip("-n", netns, "tuntap", "add", tap, "mode", "tap")
    yield* ip("-n", netns, "link", "set", tap, "address", `02:00:00:00:01:${hex(index)}`)
    yield* ip("-n", netns, "addr", "add", `${t.hostIp}/30`, "dev", tap)
    yield* ip("-n", netns, "link", "set", tap, "up")
    yield* ip("-n", netns, "neigh", "replace", t.guestIp, "lladdr", t.guestMac, "dev", tap, "nud", "permanent")
    return t
  })
