import { describe, expect, it } from "@effect/vitest"
import type { NodeId, NodeInfo } from "@paws/core"
import { formatNodeRow } from "../src/commands/nodes.ts"
import { renderTop } from "../src/TopView.ts"

const now = Date.parse("2026-01-01T12:00:00.000Z")
const node = (id: string, status: NodeInfo["status"], lastSeenAt: string): NodeInfo => ({
  id: id as NodeId,
  name: id,
  capacity: status === "lost"
    ? { maxConcurrent: 4, running: 0, available: 0 }
    : { maxConcurrent: 4, running: 1, available: 3 },
  status,
  labels: {},
  lastSeenAt,
})

describe("lost nodes in paws top and paws nodes", () => {
  const ready = node("n-ready", "ready", "2026-01-01T11:59:59.000Z")
  const lost = node("n-lost", "lost", "2026-01-01T11:58:30.000Z")

  it("paws top counts a lost node apart and says how long ago it was last seen", () => {
    const lines = renderTop({ url: "http://x", nodes: [lost, ready], sessions: [] }, now).split("\n")
    expect(lines[1]).toMatch(/^nodes 1 \(\+1 lost\) {3}running 0/)
    expect(lines.find((l) => l.startsWith("n-lost"))).toMatch(/^n-lost\s+lost\s+\[\.+\]\s+0\/4\s+last seen 1m30s ago$/)
    expect(lines.find((l) => l.startsWith("n-ready"))).toMatch(/^n-ready\s+ready\s+\[#+\.+\]\s+1\/4$/)
  })

  it("paws nodes shows a lost node's last-seen time instead of free slots", () => {
    expect(formatNodeRow(lost)).toMatch(/^n-lost\s+lost\s+0\/4 running\s+last seen 2026-01-01T11:58:30\.000Z$/)
    expect(formatNodeRow(ready)).toMatch(/^n-ready\s+ready\s+1\/4 running\s+3 free$/)
  })
})

describe("paws nodes: capacity and why", () => {
  it("shows the basis a node reports for its capacity under its row", () => {
    const basis = "64 VMs: 20.1 GiB available / 310 MiB per VM measured over 12 VMs"
    const n = node("n1", "ready", "2026-01-01T11:59:59.000Z")
    const row = formatNodeRow({ ...n, capacity: { maxConcurrent: 64, running: 2, available: 62, basis } })
    expect(row).toBe(
      `${formatNodeRow({ ...n, capacity: { maxConcurrent: 64, running: 2, available: 62 } })}\n${
        " ".repeat(18)
      }capacity ${basis}`,
    )
    expect(row).toMatch(/^n1\s+ready\s+2\/64 running\s+62 free\n/)
  })
})
