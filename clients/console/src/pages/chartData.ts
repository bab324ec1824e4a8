import type { NodeInfo, Session } from "../api.ts"
import { ms } from "../ui.tsx"

/** Counts of `values` (milliseconds) in log-spaced buckets from 100 ms, labelled by their upper bound. */
export const histogram = (values: ReadonlyArray<number>) => {
  const bounds = [100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000]
  const counts = bounds.map(() => 0).concat([0])
  for (const v of values) {
    const i = bounds.findIndex((b) => v <= b)
    counts[i === -1 ? bounds.length : i]! += 1
  }
  return { labels: [...bounds.map((b) => `≤${ms(b)}`), `>${ms(bounds.at(-1)!)}`], counts }
}

const hourMs = 3_600_000

/** Sessions created in each of the last 24 hours, oldest first, labelled by local hour. */
export const perHour = (sessions: ReadonlyArray<Session>, now: number) => {
  const end = Math.ceil(now / hourMs) * hourMs
  const counts = Array.from({ length: 24 }, () => 0)
  for (const s of sessions) {
    const slot = 23 - Math.floor((end - Date.parse(s.createdAt)) / hourMs)
    if (slot >= 0 && slot < 24) counts[slot]! += 1
  }
  const labels = counts.map((_, i) => `${new Date(end - (24 - i) * hourMs).getHours()}h`)
  return { labels, counts }
}

/** Per node: slots in use now, and the share of its slot-time the listed sessions filled over the last 24 h. */
export const utilisation = (nodes: ReadonlyArray<NodeInfo>, sessions: ReadonlyArray<Session>, now: number) => {
  const from = now - 24 * hourMs
  const busy = new Map<string, number>()
  for (const s of sessions) {
    if (s.node === null || s.startedAt === null) continue
    const start = Math.max(from, Date.parse(s.startedAt))
    const stop = s.completedAt === null ? now : Date.parse(s.completedAt)
    if (stop > start) busy.set(s.node, (busy.get(s.node) ?? 0) + stop - start)
  }
  const pct = (n: number) => Math.round(n * 1000) / 10
  return {
    labels: nodes.map((n) => n.name),
    now: nodes.map((n) => pct(n.capacity.running / Math.max(1, n.capacity.maxConcurrent))),
    day: nodes.map((n) => pct((busy.get(n.id) ?? 0) / (Math.max(1, n.capacity.maxConcurrent) * 24 * hourMs))),
  }
}
