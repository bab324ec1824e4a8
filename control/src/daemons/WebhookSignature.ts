import { createHmac, timingSafeEqual } from "node:crypto"

export const signatureHeader = "x-paws-signature-256"
export const timestampHeader = "x-paws-timestamp"

/** HMAC-SHA256 over `${timestamp}.${body}`: the timestamp is signed, so a replay cannot move it into the window. */
export const signWebhook = (secret: string, timestamp: string, body: Uint8Array | string): string =>
  "sha256=" + createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex")

export type WebhookCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string }

/**
 * Checks a paws webhook delivery: a Unix-seconds timestamp within `windowSeconds` of `nowMs`
 * and a signature that matches, compared in constant time.
 */
export const checkWebhook = (o: {
  readonly secret: string
  readonly body: Uint8Array
  readonly signature: string | undefined
  readonly timestamp: string | undefined
  readonly windowSeconds: number
  readonly nowMs: number
}): WebhookCheck => {
  if (o.signature === undefined || !/^sha256=[0-9a-f]{64}$/.test(o.signature)) {
    return { ok: false, reason: `missing or malformed ${signatureHeader} (sha256=<hex HMAC-SHA256>)` }
  }
  if (o.timestamp === undefined || !/^[0-9]{1,12}$/.test(o.timestamp)) {
    return { ok: false, reason: `missing or malformed ${timestampHeader} (Unix seconds)` }
  }
  const expected = Buffer.from(signWebhook(o.secret, o.timestamp, o.body))
  if (!timingSafeEqual(expected, Buffer.from(o.signature))) return { ok: false, reason: "signature does not match" }
  // After the signature: an unsigned request learns nothing about the clock.
  if (Math.abs(o.nowMs / 1000 - Number(o.timestamp)) > o.windowSeconds) {
    return { ok: false, reason: `${timestampHeader} is outside the ${o.windowSeconds} s replay window` }
  }
  return { ok: true }
}
