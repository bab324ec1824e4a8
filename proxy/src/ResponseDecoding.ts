import { createRequire } from "node:module"
import type { Transform } from "node:stream"

// Loaded at the first compressed response, not at the proxy's start (~3 ms of every spawn->ready):
// the proxy asks upstreams for `identity`, so most proxies never decode anything.
const require = createRequire(import.meta.url)
let loaded: typeof import("node:zlib") | undefined
const zlib = () => (loaded ??= require("node:zlib") as typeof import("node:zlib"))

const decoders: Record<string, () => Transform> = {
  gzip: () => zlib().createGunzip(),
  "x-gzip": () => zlib().createGunzip(),
  deflate: () => zlib().createInflate(),
  br: () => zlib().createBrotliDecompress(),
  zstd: () => zlib().createZstdDecompress(),
}

/**
 * A response to a request that carried a credential must be scannable for its echo. The proxy asks
 * for `identity`; an upstream that compresses anyway is decoded here before the scan (the guest
 * gets the plain body). `undefined`: nothing to decode; `"unsupported"`: an encoding the proxy
 * cannot read, so it cannot vouch for the body and refuses it.
 */
export const responseDecoder = (contentEncoding: string | undefined): Transform | "unsupported" | undefined => {
  const coding = contentEncoding?.trim().toLowerCase()
  if (coding === undefined || coding === "" || coding === "identity") return undefined
  const make = decoders[coding]
  return make === undefined ? "unsupported" : make()
}

/** Headers that describe the encoded body, dropped once the proxy has decoded it. */
export const encodedBodyHeaders = new Set(["content-encoding", "content-length"])
