import { fileURLToPath } from "node:url"

/**
 * @paws/proxy: the per-VM proxy is a program, never a library: the node spawns it, one process
 * per VM, and speaks to it over stdio (protocol: core/src/ProxyConfig.ts). This is its path.
 */
export const proxyProgram = fileURLToPath(new URL("./main.ts", import.meta.url))
