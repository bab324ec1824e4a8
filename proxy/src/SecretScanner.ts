import { Transform } from "node:stream"
import type { TransformCallback } from "node:stream"

/**
 * The byte strings under which a credential value may travel: raw, URL-encoded, JSON-escaped, hex and
 * base64/base64url at each of the three byte alignments (so that a value embedded in a longer
 * base64 text is still found). For `Bearer x` / `token x` the token itself is the secret; for
 * `Basic b64` also the decoded `user:password` and the password.
 */
export interface SecretNeedles {
  readonly needles: ReadonlyArray<Buffer>
  readonly texts: ReadonlyArray<string>
  readonly maxLength: number
}

const minCoreLength = 8
const schemeRegExp = /^\s*(bearer|token|bot|basic)\s+(\S+)\s*$/i

const cores = (value: string): Array<string> => {
  const scheme = schemeRegExp.exec(value)
  if (!scheme) return [value]
  const token = scheme[2]!
  if (scheme[1]!.toLowerCase() !== "basic") return [token]
  const decoded = Buffer.from(token, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  return /^[\x20-\x7e]+$/.test(decoded) && colon >= 0 ? [token, decoded, decoded.slice(colon + 1)] : [token]
}

const base64Fragments = (core: Buffer): Array<string> => {
  const out: Array<string> = []
  for (let k = 0; k < 3; k++) {
    const text = Buffer.concat([Buffer.alloc(k), core]).toString("base64")
    // Only characters whose 6 bits all come from the secret are independent of its neighbours.
    const start = Math.ceil((8 * k) / 6)
    const end = Math.floor((8 * (k + core.length) - 6) / 6)
    const fragment = text.slice(start, end + 1)
    out.push(fragment, fragment.replace(/\+/g, "-").replace(/\//g, "_"))
  }
  return out
}

const lowerPercent = (text: string) => text.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())

/**
 * The forms an echo may take: raw; URL-encoded (upper and lower case hex, and every byte escaped);
 * JSON-escaped, also with `\/`; hex in either case.
 */
const encodings = (core: string): Array<string> => {
  const bytes = Buffer.from(core)
  const uri = encodeURIComponent(core)
  const everyByte = [...bytes].map((b) => "%" + b.toString(16).padStart(2, "0").toUpperCase()).join("")
  const json = JSON.stringify(core).slice(1, -1)
  const hex = bytes.toString("hex")
  return [
    core,
    uri,
    lowerPercent(uri),
    everyByte,
    lowerPercent(everyByte),
    json,
    json.replace(/\//g, "\\/"),
    hex,
    hex.toUpperCase(),
  ]
}

export const secretNeedles = (values: ReadonlyArray<string>): SecretNeedles => {
  const set = new Set<string>()
  for (const value of values) {
    for (const core of cores(value)) {
      if (core.length < minCoreLength) continue
      for (const form of encodings(core)) set.add(form)
      for (const f of base64Fragments(Buffer.from(core))) if (f.length >= minCoreLength) set.add(f)
    }
  }
  const texts = [...set]
  const needles = texts.map((s) => Buffer.from(s))
  return { needles, texts, maxLength: Math.max(0, ...needles.map((n) => n.length)) }
}

const maskFor = (length: number): Buffer => Buffer.from(("[redacted-by-paws]" + "*".repeat(length)).slice(0, length))

/** Replaces every full needle in `buf` in place with a mask of equal length (lengths stay valid). */
export const redactInPlace = (buf: Buffer, secrets: SecretNeedles): boolean => {
  let found = false
  for (const needle of secrets.needles) {
    let at = buf.indexOf(needle)
    while (at !== -1) {
      found = true
      maskFor(needle.length).copy(buf, at)
      at = buf.indexOf(needle, at + needle.length)
    }
  }
  return found
}

export const containsSecret = (text: string, secrets: SecretNeedles): boolean =>
  secrets.texts.length > 0 && secrets.texts.some((n) => text.includes(n))

const containsNeedle = (buf: Buffer, secrets: SecretNeedles): boolean => secrets.needles.some((n) => buf.includes(n))

export const redactText = (text: string, secrets: SecretNeedles): string => {
  if (!containsSecret(text, secrets)) return text
  const buf = Buffer.from(text)
  redactInPlace(buf, secrets)
  return buf.toString()
}

/** Length of the longest suffix of `buf` that is a proper prefix of some needle (may complete later). */
export const pendingLength = (buf: Buffer, secrets: SecretNeedles): number => {
  let hold = 0
  for (const needle of secrets.needles) {
    for (let i = Math.max(0, buf.length - needle.length + 1); i < buf.length; i++) {
      const len = buf.length - i
      if (len <= hold) break
      if (buf[i] === needle[0] && buf.compare(needle, 0, len, i) === 0) {
        hold = len
        break
      }
    }
  }
  return hold
}

/**
 * Streams bytes through, finding needles across chunk boundaries. Holds back only a tail that
 * could still become a needle (usually nothing, so SSE events are not delayed).
 * `redact`: replace and call `onFound` once; `block`: fail the stream with `SecretFound`.
 */
export class SecretScanner extends Transform {
  private tail: Buffer | undefined
  private reported = false
  private readonly secrets: SecretNeedles
  private readonly mode: "redact" | "block"
  private readonly onFound: () => void

  constructor(secrets: SecretNeedles, mode: "redact" | "block", onFound: () => void) {
    super()
    this.secrets = secrets
    this.mode = mode
    this.onFound = onFound
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let buf = this.tail ? Buffer.concat([this.tail, chunk]) : chunk
    this.tail = undefined
    if (containsNeedle(buf, this.secrets)) {
      // Copy before editing in place: the chunk may be shared with other consumers.
      if (buf === chunk) buf = Buffer.from(chunk)
      redactInPlace(buf, this.secrets)
      if (!this.reported) {
        this.reported = true
        this.onFound()
      }
      if (this.mode === "block") return callback(new SecretFound())
    }
    const hold = pendingLength(buf, this.secrets)
    if (hold > 0) this.tail = buf.subarray(buf.length - hold)
    callback(null, hold > 0 ? buf.subarray(0, buf.length - hold) : buf)
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.tail)
  }
}

export class SecretFound extends Error {
  constructor() {
    super("a credential value was found in the stream")
    this.name = "SecretFound"
  }
}
