import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs"
import { join } from "node:path"

/** A unique credential value no one else will ever produce: `canary-<32 hex>`. */
export const newCanary = (): string => `canary-${crypto.randomUUID().replace(/-/g, "")}`

export interface Needle {
  readonly secret: string
  readonly encoding: string
  readonly bytes: Buffer
}

/**
 * Byte patterns a secret leaves behind however it was stored: raw, URL-encoded, hex, UTF-16LE
 * (JS engines, Windows APIs), and base64/base64url at each of the three alignments it can
 * have inside a larger encoded blob (e.g. `Basic base64(user:secret)`), trimmed to the
 * characters that depend on the secret alone.
 */
export const needlesOf = (secret: string): ReadonlyArray<Needle> => {
  const raw = Buffer.from(secret, "utf8")
  const out: Array<Needle> = [
    { secret, encoding: "raw", bytes: raw },
    { secret, encoding: "url", bytes: Buffer.from(encodeURIComponent(secret)) },
    { secret, encoding: "hex", bytes: Buffer.from(raw.toString("hex")) },
    { secret, encoding: "utf16le", bytes: Buffer.from(secret, "utf16le") },
  ]
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), raw]).toString("base64")
    const core = enc.slice(k === 0 ? 0 : 4, Math.floor((k + raw.length) / 3) * 4)
    out.push({ secret, encoding: `base64+${k}`, bytes: Buffer.from(core) })
    out.push({ secret, encoding: `base64url+${k}`, bytes: Buffer.from(core.replace(/\+/g, "-").replace(/\//g, "_")) })
  }
  // Distinct patterns only (URL encoding of `canary-<hex>` is the raw text).
  return out.filter((n, i) => out.findIndex((m) => m.bytes.equals(n.bytes)) === i)
}

export interface Finding {
  readonly secret: string
  readonly where: string
  readonly encoding: string
  readonly offset: number
}

/** Every needle occurrence in `data` (reported as `where`). */
export const scanBuffer = (data: Buffer, needles: ReadonlyArray<Needle>, where: string): Array<Finding> => {
  const found: Array<Finding> = []
  for (const n of needles) {
    let i = data.indexOf(n.bytes)
    while (i !== -1 && found.length < 100) {
      found.push({ secret: n.secret, where, encoding: n.encoding, offset: i })
      i = data.indexOf(n.bytes, i + 1)
    }
  }
  return found
}

export const scanText = (text: string, needles: ReadonlyArray<Needle>, where: string): Array<Finding> =>
  scanBuffer(Buffer.from(text, "utf8"), needles, where)

const chunkBytes = 8 * 1024 * 1024

/**
 * Scans a file (or an fd-readable region such as /proc/PID/mem) in overlapping chunks, so a
 * needle straddling a chunk boundary is still found. Returns findings and the bytes read.
 */
export const scanFd = (
  fd: number,
  start: number,
  length: number,
  needles: ReadonlyArray<Needle>,
  where: string,
): { readonly findings: Array<Finding>; readonly bytes: number } => {
  const overlap = Math.max(...needles.map((n) => n.bytes.length))
  const buf = Buffer.alloc(chunkBytes + overlap)
  const findings: Array<Finding> = []
  const seen = new Set<string>()
  let carry = 0 // tail of the previous chunk kept in front of the next one
  let bytes = 0
  for (let pos = start; pos < start + length;) {
    let got: number
    try {
      got = readSync(fd, buf, carry, Math.min(chunkBytes, start + length - pos), pos)
    } catch {
      break // an unreadable hole (e.g. a guard page): stop this region
    }
    if (got <= 0) break
    bytes += got
    for (const f of scanBuffer(buf.subarray(0, carry + got), needles, where)) {
      const offset = pos - carry + f.offset
      const key = `${f.encoding}@${offset}`
      if (!seen.has(key)) {
        seen.add(key)
        findings.push({ ...f, offset })
      }
    }
    const keep = Math.min(overlap - 1, carry + got)
    buf.copyWithin(0, carry + got - keep, carry + got)
    carry = keep
    pos += got
  }
  return { findings, bytes }
}

export const scanFile = (path: string, needles: ReadonlyArray<Needle>): { findings: Array<Finding>; bytes: number } => {
  const fd = openSync(path, "r")
  try {
    return scanFd(fd, 0, statSync(path).size, needles, path)
  } finally {
    closeSync(fd)
  }
}

/** Every regular file under `dir`, recursively (symlinks not followed). */
export const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name)
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : []
  })
