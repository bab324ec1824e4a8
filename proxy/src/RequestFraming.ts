import type { Refusal } from "./RequestJudge.ts"

/**
 * How the proxy frames a request body toward the upstream. Decided once, here, from headers the
 * guest's parser already accepted; the forwarder then writes its own framing (an exact
 * Content-Length it meters, or chunked encoding it produces), never bytes the guest framed.
 */
export type Framing =
  | { readonly body: "none" }
  | { readonly body: "length"; readonly length: number }
  | { readonly body: "chunked" }

/** Methods whose request may not carry a body here: a body on them is how requests get smuggled. */
const bodyless = new Set(["GET", "HEAD"])

/** Methods refused outright: TRACE/TRACK echo the request (injected headers included), CONNECT tunnels. */
export const refusedMethods = new Set(["TRACE", "TRACK", "CONNECT"])

export const malformed = (reason: string): Refusal => ({ status: 400, decision: "malformed_request", reason })

export const methodRefused = (method: string): Refusal => ({
  status: 405,
  decision: "method_refused",
  reason: `${method} is not forwarded by this sandbox's proxy (its response would echo the request's credentials)`,
})

/** Values of every header named `name` (lower case) in a flat [name, value, …] list. */
export const headerValues = (rawHeaders: ReadonlyArray<string>, name: string): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!)
  return out
}

/**
 * The body framing of a request, or a 400: both Transfer-Encoding and Content-Length, more than
 * one of either, a Transfer-Encoding other than exactly `chunked`, chunked on HTTP/1.0, a
 * control character in any header, or a body on a method (or upgrade) that may not have one.
 */
export const framingOf = (
  method: string,
  httpVersion: string,
  rawHeaders: ReadonlyArray<string>,
  upgrade: boolean,
): Framing | Refusal => {
  for (let i = 1; i < rawHeaders.length; i += 2) {
    // obs-fold and bare CR/LF are already parse errors; this keeps it so whatever the parser allows.
    if (/[\r\n\0]/.test(rawHeaders[i]!)) return malformed(`the ${rawHeaders[i - 1]} header holds a control character`)
  }
  const te = headerValues(rawHeaders, "transfer-encoding")
  const cl = headerValues(rawHeaders, "content-length")
  if (te.length > 0 && cl.length > 0) {
    return malformed("a request may not carry both Transfer-Encoding and Content-Length")
  }
  if (te.length > 1) return malformed("a request may carry at most one Transfer-Encoding header")
  if (cl.length > 1) return malformed("a request may carry at most one Content-Length header")
  let framing: Framing = { body: "none" }
  if (te.length === 1) {
    if (te[0]!.trim().toLowerCase() !== "chunked") {
      return malformed(`Transfer-Encoding must be exactly "chunked" (got "${te[0]!.slice(0, 40)}")`)
    }
    if (httpVersion !== "1.1") return malformed("Transfer-Encoding needs HTTP/1.1")
    framing = { body: "chunked" }
  } else if (cl.length === 1) {
    const value = cl[0]!.trim()
    if (!/^[0-9]{1,15}$/.test(value)) return malformed("Content-Length must be a decimal byte count")
    const length = Number(value)
    // A zero length is forwarded as such: some upstreams want Content-Length: 0 on an empty POST.
    framing = length === 0 && bodyless.has(method) ? { body: "none" } : { body: "length", length }
  }
  const hasBody = framing.body === "chunked" || (framing.body === "length" && framing.length > 0)
  if (hasBody && upgrade) return malformed("a WebSocket handshake may not carry a body")
  if (hasBody && bodyless.has(method)) return malformed(`a ${method} request may not carry a body`)
  return upgrade ? { body: "none" } : framing
}

/** The framing headers the proxy itself writes upstream. */
export const framingHeaders = (framing: Framing): Array<string> =>
  framing.body === "length"
    ? ["content-length", String(framing.length)]
    : framing.body === "chunked"
    ? ["transfer-encoding", "chunked"]
    : []
