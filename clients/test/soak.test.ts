import { describe, expect, it } from "@effect/vitest"
import { runSoak } from "./soak/Soak.ts"

// Root only: the short soak (`npm run soak` runs 200). A real control plane and node as processes,
// every fault kind at least once, each injected only after the state it targets was observed, so
// every outcome is certain; then nothing may be left: TAP, table, QEMU, proxy, pool or run dir.
describe("fault soak (short)", () => {
  it("every session ends as its fault dictates and nothing is left behind", async () => {
    const seed = Number(process.env.PAWS_SOAK_SEED ?? 7)
    const lines: Array<string> = []
    const report = await runSoak({ sessions: 18, maxMinutes: 6, seed, log: (l) => lines.push(l) })
    const context = `seed ${seed}\n${lines.join("\n")}\n${report.error ?? ""}`
    expect(report.error, context).toBeUndefined()
    expect(report.stoppedEarly, context).toBe(false)
    expect(report.sessions, context).toBeGreaterThanOrEqual(18)
    expect(Object.keys(report.byKind).sort(), context).toEqual(
      expect.arrayContaining([
        "cancel-pending",
        "cancel-running",
        "cancel-starting",
        "control-restart",
        "node-kill",
        "normal",
        "proxy-kill",
        "qemu-kill",
        "ssh-cut",
        "timeout",
      ]),
    )
    expect(report.mismatches, context).toEqual([])
    expect(report.heldAfterEnd, context).toEqual([])
    expect(report.leaks, context).toEqual({ taps: [], tables: [], qemu: [], proxies: [], pool: [], runDirs: [] })
    for (const status of ["completed", "failed", "timeout", "cancelled"]) {
      expect(report.byOutcome[status] ?? 0, context).toBeGreaterThan(0)
    }
  }, 600_000)
})
