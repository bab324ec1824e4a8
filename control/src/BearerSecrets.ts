import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

/**
 * The shape shared by API keys (`paws_<id>_<secret>`) and node tokens (`pawsn_<id>_<secret>`):
 * a 12-character id that finds the row, and a 256-bit random secret stored only as its SHA-256
 * (a slow hash adds nothing for 256-bit random secrets and would cost every request).
 */
export const newBearer = (prefix: string) => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  const id = Array.from(randomBytes(12), (b) => alphabet[b % 36]).join("")
  const secret = randomBytes(32).toString("base64url")
  return { id, secretHash: hashSecret(secret).toString("hex"), bearer: `${prefix}_${id}_${secret}` }
}

/** `prefix_<id>_<secret>` split, or undefined when the text is not of that shape. */
export const parseBearer = (prefix: string, text: string): { id: string; secret: string } | undefined => {
  const m = new RegExp(`^${prefix}_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$`).exec(text)
  return m === null ? undefined : { id: m[1]!, secret: m[2]! }
}

export const hashSecret = (secret: string): Buffer => createHash("sha256").update(secret).digest()

/** Constant-time comparison of a presented secret with a stored hash. */
export const secretMatches = (storedHash: Buffer, secret: string): boolean =>
  storedHash.length === 32 && timingSafeEqual(storedHash, hashSecret(secret))
