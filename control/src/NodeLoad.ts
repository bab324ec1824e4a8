import type { NodeInfo } from "@paws/core"

/** Sessions this replica streams per node: what it counts against each node's capacity when it plans. */
export const makeNodeLoad = () => {
  const perNode = new Map<string, number>()
  return {
    take: (node: string) => void perNode.set(node, (perNode.get(node) ?? 0) + 1),
    release: (node: string) => void perNode.set(node, Math.max(0, (perNode.get(node) ?? 1) - 1)),
    /** The node as the planner sees it: its slots less the sessions this replica runs there. */
    withFreeSlots: (info: NodeInfo): NodeInfo => {
      const busy = perNode.get(info.id) ?? 0
      const max = info.capacity.maxConcurrent
      return { ...info, capacity: { ...info.capacity, running: busy, available: Math.max(0, max - busy) } }
    },
  }
}
