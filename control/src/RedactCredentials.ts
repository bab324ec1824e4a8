import type { SessionDispatch } from "@paws/core"

type Credentials = SessionDispatch["network"]["credentials"]

/** Secrets shorter than this are refused at create time (CredentialPolicy); shorter fragments are not worth hiding. */
const minFragment = 4

/**
 * `text` (e.g. a node's rejection of a dispatch, whose schema issue text may quote the payload)
 * with every credential value control sent replaced by `[redacted]`: raw, JSON-escaped, and
 * without its auth scheme (`Bearer …`), longest first so no tail of a value survives.
 */
export const redactCredentials = (text: string, credentials: Credentials): string => {
  const forms = new Set<string>()
  for (const rule of Object.values(credentials)) {
    for (const value of Object.values(rule.headers)) {
      const secret = value.replace(/^\S+\s+/, "")
      for (const v of [value, secret]) {
        forms.add(v)
        forms.add(JSON.stringify(v).slice(1, -1))
        forms.add(encodeURIComponent(v))
      }
    }
  }
  let out = text
  for (const form of [...forms].filter((f) => f.length >= minFragment).sort((a, b) => b.length - a.length)) {
    out = out.split(form).join("[redacted]")
  }
  return out
}
