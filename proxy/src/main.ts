/**
 * `paws proxy` entry: one process per VM. Protocol and lifecycle: core/src/ProxyConfig.ts.
 *
 * Before anything else is loaded, turn on Node's compile cache (stripped TypeScript + V8 code
 * cache): about a third less CPU from spawn to ready. It lives under node_modules, writable only
 * by whoever installed paws, never in a shared /tmp; where that is read-only it stays off.
 */
import * as nodeModule from "node:module"
import { fileURLToPath } from "node:url"

nodeModule.enableCompileCache?.(fileURLToPath(new URL("../../node_modules/.cache/paws-proxy", import.meta.url)))
await import("./ProxyMain.ts")
