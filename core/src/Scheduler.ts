import type { NodeInfo } from "./NodeInfo.ts"

/**
 * Picks the node for the next session: among ready nodes with a free slot, the one with
 * the most free slots; ties go to the smallest id so the choice is deterministic.
 * `undefined` means wait in the queue.
 */
export const chooseNode = (nodes: ReadonlyArray<NodeInfo>): NodeInfo | undefined => {
  let best: NodeInfo | undefined
  for (const node of nodes) {
    if (node.status !== "ready" || node.capacity.available <= 0) continue
    if (
      best === undefined ||
      node.capacity.available > best.capacity.available ||
      (node.capacity.available === best.capacity.available && node.id < best.id)
    ) {
      best = node
    }
  }
  return best
}

/**
 * Assigns queued sessions in order, updating free slots as it goes. Returns the
 * assignments; sessions that get no node stay queued.
 */
export const planDispatch = <S>(
  queue: ReadonlyArray<S>,
  nodes: ReadonlyArray<NodeInfo>,
): ReadonlyArray<{ readonly session: S; readonly node: NodeInfo }> => {
  let working: ReadonlyArray<NodeInfo> = nodes
  const out: Array<{ session: S; node: NodeInfo }> = []
  for (const session of queue) {
    const node = chooseNode(working)
    if (node === undefined) break
    const taken = {
      ...node,
      capacity: { ...node.capacity, available: node.capacity.available - 1, running: node.capacity.running + 1 },
    }
    working = working.map((n) => (n.id === node.id ? taken : n))
    out.push({ session, node: nodes.find((n) => n.id === node.id)! })
  }
  return out
}
