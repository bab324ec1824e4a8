import { RE2JS } from "re2js"
import type { FieldProblem, SessionSpec, Trigger } from "@paws/core"
import { Cron } from "effect"

/**
 * What the schema cannot check about a daemon's triggers: unique names, a parseable cron schedule in a
 * known time zone, compilable GitHub body patterns, an https watch URL and a polling interval above the floor.
 */
export const triggerProblems = (
  triggers: ReadonlyArray<Trigger>,
  o: { readonly minWatchIntervalSeconds: number },
): ReadonlyArray<FieldProblem> => {
  const problems: Array<FieldProblem> = []
  const seen = new Set<string>()
  triggers.forEach((t, i) => {
    const at = `triggers[${i}]`
    if (seen.has(t.name)) problems.push({ path: `${at}.name`, message: `"${t.name}" is used by another trigger` })
    seen.add(t.name)
    switch (t.kind) {
      case "cron": {
        if (t.timeZone !== undefined && !validTimeZone(t.timeZone)) {
          problems.push({ path: `${at}.timeZone`, message: "must be an IANA time zone such as Europe/Paris" })
          break
        }
        const parsed = Cron.parse(t.schedule, t.timeZone ?? "UTC")
        if (parsed._tag === "Failure") {
          problems.push({
            path: `${at}.schedule`,
            message: `is not a cron expression (5 fields, or 6 with seconds first): ${parsed.failure.message}`,
          })
        }
        break
      }
      case "github":
        t.filters.forEach((f, j) => {
          if (f.bodyPattern !== undefined && compile(f.bodyPattern) === undefined) {
            problems.push({
              path: `${at}.filters[${j}].bodyPattern`,
              message: "is not a valid RE2 regular expression (no backreferences or lookarounds)",
            })
          }
          if (f.branch !== undefined && f.event !== "push") {
            problems.push({ path: `${at}.filters[${j}].branch`, message: "applies to the push event only" })
          }
        })
        break
      case "watch": {
        const url = URL.parse(t.url)
        if (url === null || url.protocol !== "https:" || url.username !== "" || url.password !== "") {
          problems.push({ path: `${at}.url`, message: "must be an https:// URL without credentials" })
        }
        if (t.intervalSeconds < o.minWatchIntervalSeconds) {
          problems.push({ path: `${at}.intervalSeconds`, message: `must be at least ${o.minWatchIntervalSeconds}` })
        }
        if (t.pointer !== undefined && t.pointer !== "" && !t.pointer.startsWith("/")) {
          problems.push({ path: `${at}.pointer`, message: "must be a JSON pointer (empty, or starting with /)" })
        }
        break
      }
      case "webhook":
        break
    }
  })
  return problems
}

/**
 * A filter's body pattern, matched by RE2 (linear time): a pattern is the daemon owner's input and the body a
 * stranger's, so a backtracking engine would let one crafted comment stall the hook handler. Backreferences and
 * lookarounds are refused as invalid.
 */
export const compile = (pattern: string): { readonly test: (text: string) => boolean } | undefined => {
  try {
    const re = RE2JS.compile(pattern)
    return { test: (text) => re.matcher(text).find() }
  } catch {
    return undefined
  }
}

const validTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz })
    return true
  } catch {
    return false
  }
}

type SessionFields =
  & Pick<SessionSpec, "workload">
  & Partial<Pick<SessionSpec, "snapshot" | "resources" | "timeoutMs" | "metadata" | "nodeSelector" | "mcp">>

/** The session part of a daemon spec, without its network (stored and restored separately). */
export const sessionPart = (d: SessionFields): SessionSpec => ({
  ...(d.snapshot === undefined ? {} : { snapshot: d.snapshot }),
  workload: d.workload,
  ...(d.resources === undefined ? {} : { resources: d.resources }),
  ...(d.timeoutMs === undefined ? {} : { timeoutMs: d.timeoutMs }),
  ...(d.metadata === undefined ? {} : { metadata: d.metadata }),
  ...(d.nodeSelector === undefined ? {} : { nodeSelector: d.nodeSelector }),
  ...(d.mcp === undefined ? {} : { mcp: d.mcp }),
})
