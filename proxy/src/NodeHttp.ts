import { createRequire } from "node:module"

/**
 * node:http and node:https through `require`: an ESM import of either makes Node materialise every
 * export, which loads its bundled undici (~20 ms and ~9 MiB at spawn) for exports the proxy never uses.
 */
const require = createRequire(import.meta.url)
export const http = require("node:http") as typeof import("node:http")
export const https = require("node:https") as typeof import("node:https")
