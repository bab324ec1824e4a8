import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit } from "effect"
import { spawn } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { measureVmCost, planCapacity, readVmCost, writeVmCost } from "../src/NodeCapacity.ts"
import { nodeSettingsConfig } from "../src/NodeConfig.ts"

const gib = 2 ** 30
const settingsWith = (env: Record<string, string>) =>
  nodeSettingsConfig.parse(ConfigProvider.fromEnvRecord({ PAWS_NODE_TOKEN: "t", ...env }))

describe("node capacity from memory, not cores", () => {
  it("fits as many VMs as 90% of available memory holds at the measured per-VM cost, and says so", () => {
    const plan = planCapacity(20.1 * gib, { perVmMiB: 310, vms: 12, measuredAt: "2026-12-07T00:00:00Z" })
    assert.strictEqual(plan.maxVms, Math.floor((20.1 * 1024 * 0.9) / 310))
    assert.strictEqual(plan.basis, `${plan.maxVms} VMs: 20.1 GiB available / 310 MiB per VM measured over 12 VMs`)
    const unmeasured = planCapacity(4 * gib, undefined)
    assert.match(unmeasured.basis, /per VM estimated \(no VM measured on this node yet\)$/)
    assert.strictEqual(planCapacity(10 * 2 ** 20, undefined).maxVms, 1, "never below one VM")
  })

  it.effect("PAWS_NODE_MAX_VMS unset: the node's settings take the plan from the data dir's measured cost", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "paws-capacity-"))
      try {
        writeVmCost(dir, { perVmMiB: 100, vms: 3, measuredAt: new Date().toISOString() })
        assert.deepStrictEqual(readVmCost(dir)?.vms, 3)
        const derived = yield* settingsWith({ PAWS_DATA_DIR: dir })
        assert.match(derived.capacityBasis, /^\d+ VMs: [\d.]+ GiB available \/ 100 MiB per VM measured over 3 VMs$/)
        assert.strictEqual(derived.capacityBasis.split(" ")[0], String(derived.maxVms))
        const fixed = yield* settingsWith({ PAWS_DATA_DIR: dir, PAWS_NODE_MAX_VMS: "7" })
        assert.strictEqual(fixed.maxVms, 7)
        assert.strictEqual(fixed.capacityBasis, "PAWS_NODE_MAX_VMS=7")
        const refused = yield* Effect.exit(settingsWith({ PAWS_NODE_MAX_VMS: "0" }))
        assert.isTrue(Exit.isFailure(refused))
        assert.include(String(refused), "PAWS_NODE_MAX_VMS")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))

  it("measures PSS of everything the node spawned per running QEMU", async () => {
    const dir = mkdtempSync(join(tmpdir(), "paws-capacity-"))
    // A process whose name is a QEMU's (the kernel names it after its executable), and a helper.
    copyFileSync("/bin/sleep", join(dir, "qemu-system-x86_64"))
    const qemu = spawn(join(dir, "qemu-system-x86_64"), ["30"], { stdio: "ignore" })
    const helper = spawn("/bin/sleep", ["30"], { stdio: "ignore" })
    try {
      await new Promise((r) => setTimeout(r, 200))
      const cost = measureVmCost(process.pid)!
      assert.strictEqual(cost.vms, 1)
      assert.isAbove(cost.perVmMiB, 0)
      qemu.kill()
      await new Promise((r) => qemu.once("exit", r))
      assert.isUndefined(measureVmCost(process.pid), "no QEMU running: nothing to measure")
    } finally {
      qemu.kill()
      helper.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
