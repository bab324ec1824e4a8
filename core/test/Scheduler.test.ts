import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { chooseNode, planDispatch } from "../src/Scheduler.ts"
import type { NodeInfo } from "../src/NodeInfo.ts"

const node = (id: string, available: number, status: NodeInfo["status"] = "ready"): NodeInfo =>
  ({
    id,
    name: id,
    status,
    labels: {},
    capacity: { maxConcurrent: available + 1, running: 1, available },
  }) as NodeInfo

const arbNode = fc.record({
  id: fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/),
  available: fc.integer({ min: 0, max: 8 }),
  status: fc.constantFrom("ready" as const, "draining" as const, "lost" as const),
}).map((n) => node(n.id, n.available, n.status))

const arbNodes = fc.uniqueArray(arbNode, { selector: (n) => n.id, maxLength: 8 })

describe("chooseNode", () => {
  it("picks a ready node with the most free slots", () => {
    fc.assert(fc.property(arbNodes, (nodes) => {
      const chosen = chooseNode(nodes)
      const eligible = nodes.filter((n) => n.status === "ready" && n.capacity.available > 0)
      if (eligible.length === 0) return chosen === undefined
      const most = Math.max(...eligible.map((n) => n.capacity.available))
      return chosen !== undefined && chosen.status === "ready" && chosen.capacity.available === most
    }))
  })

  it("breaks ties deterministically by id, whatever the input order", () => {
    fc.assert(fc.property(arbNodes, fc.integer(), (nodes, seed) => {
      const shuffled = [...nodes].sort((a, b) => ((a.id.charCodeAt(0) * seed) % 7) - ((b.id.charCodeAt(0) * seed) % 7))
      return chooseNode(nodes)?.id === chooseNode(shuffled)?.id
    }))
    expect(chooseNode([node("b", 2), node("a", 2), node("c", 1)])?.id).toBe("a")
  })

  it("never picks a full, draining or lost node", () => {
    expect(chooseNode([node("a", 0), node("b", 5, "draining"), node("c", 5, "lost")])).toBeUndefined()
  })
})

describe("planDispatch", () => {
  it("never assigns more sessions to a node than it has free slots, and keeps queue order", () => {
    fc.assert(fc.property(arbNodes, fc.integer({ min: 0, max: 40 }), (nodes, queued) => {
      const queue = Array.from({ length: queued }, (_, i) => i)
      const plan = planDispatch(queue, nodes)
      const free = nodes
        .filter((n) => n.status === "ready")
        .reduce((sum, n) => sum + Math.max(0, n.capacity.available), 0)
      if (plan.length !== Math.min(queued, free)) return false
      if (plan.some((p, i) => p.session !== i)) return false
      return nodes.every((n) => plan.filter((p) => p.node.id === n.id).length <= Math.max(0, n.capacity.available))
    }))
  })

  it("spreads load: each pick goes to the node with the most remaining slots", () => {
    const plan = planDispatch(["s1", "s2", "s3"], [node("a", 1), node("b", 3)])
    expect(plan.map((p) => p.node.id)).toEqual(["b", "b", "a"])
  })
})
