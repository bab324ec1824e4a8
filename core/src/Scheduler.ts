import type { NodeInfo } from "./NodeInfo.ts"

/** What a session needs of a node: its snapshot ready there, and the labels it selects. */
export interface Placement {
  readonly snapshot: string
  readonly nodeSelector?: Readonly<Record<string, string>>
}

const selects = (node: NodeInfo, selector: Placement["nodeSelector"]): boolean =>
  selector === undefined || Object.entries(selector).every(([k, v]) => node.labels[k] === v)

/** A node that does not report its snapshots is assumed to hold them all (older nodes, in-process tests). */
const holds = (node: NodeInfo, snapshot: string, statuses: ReadonlyArray<string>): boolean =>
  node.snapshots === undefined || node.snapshots.some((s) => s.name === snapshot && statuses.includes(s.status))

/** Whether the node may run the session now, capacity aside. */
export const nodeFits = (node: NodeInfo, placement: Placement | undefined): boolean =>
  node.status === "ready" &&
  (placement === undefined || (selects(node, placement.nodeSelector) && holds(node, placement.snapshot, ["ready"])))

/**
 * Why no node among `nodes` can ever take the session as they stand (none selected by its labels, or
 * none holding its snapshot ready or building), or undefined when one can — now or once it has a free slot.
 * With no nodes at all there is no verdict: nodes may still connect.
 */
export const placementProblem = (
  nodes: ReadonlyArray<NodeInfo>,
  placement: Placement,
): { readonly field: "nodeSelector" | "snapshot"; readonly message: string } | undefined => {
  const live = nodes.filter((n) => n.status !== "lost")
  if (live.length === 0) return undefined
  const selected = live.filter((n) => selects(n, placement.nodeSelector))
  if (selected.length === 0) return undefined // labels are the operator's plan: nodes with them may join
  if (selected.some((n) => holds(n, placement.snapshot, ["ready", "building"]))) return undefined
  const stale = selected.flatMap((n) => n.snapshots ?? []).find((s) => s.name === placement.snapshot && s.error)
  return {
    field: "snapshot",
    message: stale?.error !== undefined
      ? stale.error
      : `no node holds snapshot "${placement.snapshot}"; build it (POST /v1/snapshots, ` +
        `\`paws image snapshot ${placement.snapshot} …\`) or keep it on a node (PAWS_NODE_SNAPSHOTS)`,
  }
}

/**
 * Picks the node for the next session: among fitting nodes with a free slot, the one with
 * the most free slots; ties go to the smallest id so the choice is deterministic.
 * `undefined` means wait in the queue.
 */
export const chooseNode = (nodes: ReadonlyArray<NodeInfo>, placement?: Placement): NodeInfo | undefined => {
  let best: NodeInfo | undefined
  for (const node of nodes) {
    if (node.capacity.available <= 0 || !nodeFits(node, placement)) continue
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
 * Assigns queued sessions in order, updating free slots as it goes. A session no node fits
 * now is passed over (it does not hold up the ones behind it) and stays queued.
 */
export const planDispatch = <S>(
  queue: ReadonlyArray<S>,
  nodes: ReadonlyArray<NodeInfo>,
  placementOf: (session: S) => Placement | undefined = () => undefined,
): ReadonlyArray<{ readonly session: S; readonly node: NodeInfo }> => {
  let working: ReadonlyArray<NodeInfo> = nodes
  const out: Array<{ session: S; node: NodeInfo }> = []
  for (const session of queue) {
    if (!working.some((n) => n.capacity.available > 0)) break
    const node = chooseNode(working, placementOf(session))
    if (node === undefined) continue
    const taken = {
      ...node,
      capacity: { ...node.capacity, available: node.capacity.available - 1, running: node.capacity.running + 1 },
    }
    working = working.map((n) => (n.id === node.id ? taken : n))
    out.push({ session, node: nodes.find((n) => n.id === node.id)! })
  }
  return out
}
