import { describe, expect, it } from "@effect/vitest"
import type { SnapshotView } from "@paws/core"
import { placementReport } from "../src/snapshot/PlacementReport.ts"

const view = (name: string, status: SnapshotView["status"], error?: string): SnapshotView =>
  ({ name, node: "n", status, ...(error === undefined ? {} : { error }) }) as SnapshotView

describe("placementReport: what a node tells control it can run", () => {
  it("an image cold-boots and a ready snapshot restores: both ready; builds and stale ones say so", () => {
    expect(placementReport(["default", "node"], [
      view("default", "ready"),
      view("tools", "building"),
      view("agent", "stale", "image rebuilt; rebuild it"),
      view("broken", "failed", "setup exited 1"),
      view("node", "stale", "image rebuilt"),
    ])).toEqual([
      { name: "agent", status: "stale", error: "image rebuilt; rebuild it" },
      { name: "default", status: "ready" },
      // A stale snapshot with an image of its name still runs: the node cold-boots the image.
      { name: "node", status: "ready" },
      { name: "tools", status: "building" },
    ])
  })
})
