import type { NodeSnapshot, SnapshotView } from "@paws/core"

/**
 * What a node tells control it can run, by name (images and snapshots share one name space):
 * a built image cold-boots and a ready snapshot restores, so either is `ready`; a build in progress
 * is `building`; a snapshot that may not be restored and has no image to fall back on is `stale`,
 * with the node's reason. Failed builds are not reported: there is nothing to run.
 */
export const placementReport = (
  images: ReadonlyArray<string>,
  snapshots: ReadonlyArray<SnapshotView>,
): ReadonlyArray<NodeSnapshot> => {
  const out = new Map<string, NodeSnapshot>()
  for (const name of images) out.set(name, { name, status: "ready" })
  for (const s of snapshots) {
    const had = out.get(s.name)
    if (s.status === "ready") out.set(s.name, { name: s.name, status: "ready" })
    else if (s.status === "building" && had === undefined) out.set(s.name, { name: s.name, status: "building" })
    else if (s.status === "stale" && had === undefined) {
      out.set(s.name, { name: s.name, status: "stale", ...(s.error === undefined ? {} : { error: s.error }) })
    }
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name))
}
