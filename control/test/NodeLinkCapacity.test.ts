import { assert, describe, it } from "@effect/vitest"
import type { NodeId, NodeInfo } from "@paws/core"
import { capCapacity } from "../src/NodeLink.ts"

const report = (maxConcurrent: number, basis: string): NodeInfo => ({
  id: "n1" as NodeId,
  name: "n1",
  status: "ready",
  labels: {},
  capacity: { maxConcurrent, running: 1, available: maxConcurrent - 1, basis },
})

describe("a node's capacity as control lists it", () => {
  it("keeps the node's reason when control's cap allows what it offers", () => {
    const basis = "200 VMs: 20.1 GiB available / 100 MiB per VM measured over 12 VMs"
    assert.deepStrictEqual(capCapacity(report(200, basis), 256).capacity, {
      maxConcurrent: 200,
      running: 1,
      available: 199,
      basis,
    })
  })

  it("says control capped it when control's cap is lower than the node's offer", () => {
    const capped = capCapacity(report(200, "200 VMs: …"), 64).capacity
    assert.strictEqual(capped.maxConcurrent, 64)
    assert.strictEqual(capped.available, 63)
    assert.strictEqual(
      capped.basis,
      "64 VMs: capped by control (PAWS_NODE_MAX_CONCURRENT or the node token's maxConcurrent; the node offers 200)",
    )
  })
})
