import { createRequire } from "node:module"

/**
 * node:http, node:https and node:tls, loaded at first use. Not ESM imports: an ESM import of http
 * or https makes Node materialise every export, which loads its bundled undici (~20 ms and ~9 MiB
 * at spawn) for exports the proxy never uses. Not loaded at import either: each proxy loads them
 * when it first listens or connects.
 */
const require = createRequire(import.meta.url)
const lazyBuiltin = <T extends object>(name: string): T => {
  let loaded: T | undefined
  return new Proxy({} as T, { get: (_, key) => Reflect.get(loaded ??= require(name) as T, key) })
}
export const http = lazyBuiltin<typeof import("node:http")>("node:http")
export const https = lazyBuiltin<typeof import("node:https")>("node:https")
export const tls = lazyBuiltin<typeof import("node:tls")>("node:tls")
