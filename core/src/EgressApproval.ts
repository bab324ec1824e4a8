import * as Schema from "effect/Schema" // per-module import: the proxy loads this
import { hostMatches, hostPatternProblem } from "./HostPattern.ts"

/**
 * A request that needs a human's approval before the proxy forwards it:
 * `HOST`, `HOST/PATH` or `METHOD HOST/PATH`, e.g. `api.github.com` (every request to it) or
 * `POST api.github.com/repos/*\/merges`. In a path, `*` matches within one segment and `**`
 * any number of segments; the query string is not matched.
 */
export interface ParsedEgressRule {
  readonly method: string | undefined
  readonly host: string
  readonly path: RegExp | undefined
}

const methodRegExp = /^[A-Z]{1,16}$/

const pathRegExp = (glob: string): RegExp =>
  new RegExp(
    "^" + glob.split(/(\*\*|\*)/).map((part) =>
      part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    ).join("") + "$",
  )

/** The rule's parts, or why it is not one. */
export const parseEgressRule = (rule: string): ParsedEgressRule | string => {
  const parts = rule.trim().split(/\s+/)
  if (parts.length > 2) return "must be `HOST[/PATH]` or `METHOD HOST[/PATH]`"
  const method = parts.length === 2 ? parts[0]! : undefined
  if (method !== undefined && !methodRegExp.test(method)) return "the method must be upper-case letters, e.g. POST"
  const target = parts[parts.length - 1]!
  const slash = target.indexOf("/")
  const host = slash === -1 ? target : target.slice(0, slash)
  const hostProblem = hostPatternProblem(host)
  if (hostProblem !== undefined) return `host ${hostProblem}`
  const path = slash === -1 ? undefined : target.slice(slash)
  if (path !== undefined && (path.length > 1024 || /[\s?#]/.test(path))) {
    return "the path must be at most 1024 characters without spaces, ? or #"
  }
  return { method, host, path: path === undefined ? undefined : pathRegExp(path) }
}

export const EgressApprovalRule = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => {
    const parsed = parseEgressRule(s)
    return typeof parsed === "string" ? parsed : true
  })),
).annotate({
  identifier: "EgressApprovalRule",
  description: "HOST, HOST/PATH or METHOD HOST/PATH (e.g. `POST api.github.com/repos/*/merges`) held for approval",
})

/** Whether a request matches a parsed rule (host as normalised by the proxy, path without the query). */
export const egressRuleMatches = (rule: ParsedEgressRule, method: string, host: string, path: string): boolean =>
  hostMatches(rule.host, host) && (rule.method === undefined || rule.method === method) &&
  (rule.path === undefined || rule.path.test(path.split("?")[0]!))
