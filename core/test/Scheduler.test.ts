import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { chooseNode, placementProblem, planDispatch } from "../src/Scheduler.ts"
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

const placed = (
  id: string,
  available: number,
  labels: Record<string, string>,
  snapshots?: ReadonlyArray<{ name: string; status: "ready" | "building" }>,
): NodeInfo => ({ ...node(id, available), labels, ...(snapshots === undefined ? {} : { snapshots }) }) as NodeInfo

describe("placement", () => {
  const gpu = placed("gpu", 1, { gpu: "a100", zone: "x" }, [{ name: "default", status: "ready" }])
  const cpu = placed("cpu", 5, { zone: "x" }, [{ name: "default", status: "ready" }, {
    name: "agent",
    status: "ready",
  }])
  const building = placed("b", 9, {}, [{ name: "tools", status: "building" }])

  it("sends a session only to nodes carrying every selected label", () => {
    expect(chooseNode([gpu, cpu], { snapshot: "default", nodeSelector: { gpu: "a100" } })?.id).toBe("gpu")
    expect(chooseNode([gpu, cpu], { snapshot: "default", nodeSelector: { zone: "x" } })?.id).toBe("cpu")
    expect(chooseNode([gpu, cpu], { snapshot: "default", nodeSelector: { gpu: "h100" } })).toBeUndefined()
  })

  it("sends a session only where its snapshot is ready (building is not enough)", () => {
    expect(chooseNode([gpu, cpu], { snapshot: "agent" })?.id).toBe("cpu")
    expect(chooseNode([gpu, building], { snapshot: "tools" })).toBeUndefined()
    // A node that does not report its snapshots is taken to hold them all.
    expect(chooseNode([placed("old", 1, {})], { snapshot: "anything" })?.id).toBe("old")
  })

  it("passes over a session no node fits without holding up the ones behind it", () => {
    const queue = [{ s: "agent-1", p: { snapshot: "agent" } }, { s: "gpu-1", p: { snapshot: "x" } }, {
      s: "d",
      p: { snapshot: "default", nodeSelector: { gpu: "a100" } },
    }]
    const plan = planDispatch(queue, [gpu, { ...cpu, capacity: { ...cpu.capacity, available: 0 } }], (q) => q.p)
    expect(plan.map((p) => [p.session.s, p.node.id])).toEqual([["d", "gpu"]])
  })

  it("refuses up front only a snapshot no selected node holds or is building", () => {
    expect(placementProblem([gpu, cpu], { snapshot: "agent" })).toBeUndefined()
    expect(placementProblem([building], { snapshot: "tools" })).toBeUndefined()
    expect(placementProblem([gpu, cpu], { snapshot: "claude-agent" })?.field).toBe("snapshot")
    expect(placementProblem([gpu, cpu], { snapshot: "claude-agent" })?.message).toContain("PAWS_NODE_SNAPSHOTS")
    // Only the selected nodes count: cpu holds "agent" but the session wants a gpu node.
    expect(placementProblem([gpu, cpu], { snapshot: "agent", nodeSelector: { gpu: "a100" } })?.field).toBe("snapshot")
    // No node connected, or none selected yet: nodes may still join, so the session queues.
    expect(placementProblem([], { snapshot: "agent" })).toBeUndefined()
    expect(placementProblem([gpu], { snapshot: "agent", nodeSelector: { pool: "big" } })).toBeUndefined()
    expect(placementProblem([{ ...cpu, status: "lost" }], { snapshot: "claude-agent" })).toBeUndefined()
    // Present but stale: the node's own reason (and fix) is the answer.
    const stale = placed("s", 1, {}, [{ name: "tools", status: "stale", error: "image rebuilt; rebuild it" } as never])
    expect(placementProblem([stale], { snapshot: "tools" })?.message).toBe("image rebuilt; rebuild it")
    expect(chooseNode([stale], { snapshot: "tools" })).toBeUndefined()
  })
})
