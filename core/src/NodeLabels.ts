import * as Schema from "effect/Schema" // per-module import: SessionSpec (and so the proxy) loads this

/** A node label's key and value: Kubernetes-style, so labels copied from a cluster fit. */
export const labelKeyPattern = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/
export const labelValuePattern = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/
export const LabelKey = Schema.String.pipe(
  Schema.check(Schema.isPattern(labelKeyPattern, { message: "must be 1-63 chars of A-Z a-z 0-9 . _ / -" })),
)
export const LabelValue = Schema.String.pipe(
  Schema.check(Schema.isPattern(labelValuePattern, { message: "must be 0-63 chars of A-Z a-z 0-9 . _ -" })),
)
export const NodeLabels = Schema.Record(LabelKey, LabelValue).annotate({ identifier: "NodeLabels" })

/** `k=v,k2=v2` (PAWS_NODE_LABELS) as labels; a problem names the first bad entry. */
export const parseLabels = (
  text: string,
): { readonly labels: Record<string, string> } | { readonly problem: string } => {
  const labels: Record<string, string> = {}
  for (const entry of text.split(",").map((e) => e.trim()).filter((e) => e !== "")) {
    const eq = entry.indexOf("=")
    const key = eq < 0 ? entry : entry.slice(0, eq)
    const value = eq < 0 ? "" : entry.slice(eq + 1)
    if (!labelKeyPattern.test(key)) {
      return { problem: `label "${entry}": the key must be 1-63 chars of A-Z a-z 0-9 . _ / -` }
    }
    if (!labelValuePattern.test(value)) {
      return { problem: `label "${entry}": the value must be 0-63 chars of A-Z a-z 0-9 . _ -` }
    }
    labels[key] = value
  }
  return { labels }
}
