import type { NodeInfo, Session } from "@paws/core"

const age = (fromIso: string | null, now: number): string => {
  if (fromIso === null) return "-"
  const s = Math.max(0, Math.round((now - Date.parse(fromIso)) / 1000))
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : `${Math.floor(s / 3600)}h`
}

const bar = (used: number, total: number, width = 10): string => {
  const filled = total === 0 ? 0 : Math.round((used / total) * width)
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`
}

/** One frame of `paws top`: nodes with capacity bars, then active sessions. Pure, for tests. */
export const renderTop = (
  input: { readonly url: string; readonly nodes: ReadonlyArray<NodeInfo>; readonly sessions: ReadonlyArray<Session> },
  now: number,
): string => {
  const lines: Array<string> = []
  const running = input.sessions.filter((s) => s.status === "running" || s.status === "starting").length
  const pending = input.sessions.filter((s) => s.status === "pending").length
  lines.push(`paws top — ${input.url} — ${new Date(now).toISOString()}   (q to quit)`)
  const lost = input.nodes.filter((n) => n.status === "lost").length
  lines.push(
    `nodes ${input.nodes.length - lost}${lost > 0 ? ` (+${lost} lost)` : ""}   running ${running}   queued ${pending}`,
  )
  lines.push("")
  lines.push("NODE              STATUS    SLOTS          RUNNING/MAX")
  for (const n of input.nodes) {
    lines.push(
      `${n.id.padEnd(16).slice(0, 16)}  ${n.status.padEnd(8)}  ${
        bar(n.capacity.running, n.capacity.maxConcurrent)
      }   ${n.capacity.running}/${n.capacity.maxConcurrent}${
        n.status === "lost" ? `   last seen ${age(n.lastSeenAt ?? null, now)} ago` : ""
      }`,
    )
  }
  if (input.nodes.length === 0) lines.push("(no nodes)")
  lines.push("")
  lines.push("SESSION                               STATUS    NODE              AGE")
  for (const s of input.sessions) {
    lines.push(
      `${s.id}  ${s.status.padEnd(8)}  ${(s.node ?? "-").padEnd(16).slice(0, 16)}  ${
        age(s.startedAt ?? s.createdAt, now)
      }`,
    )
  }
  if (input.sessions.length === 0) lines.push("(no active sessions)")
  return lines.join("\n")
}
