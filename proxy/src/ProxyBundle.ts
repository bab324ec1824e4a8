/**
 * Entry of the proxy's bundle (ProxyBundleBuild.ts), run by ProxyLoader.cjs. Nothing happens at
 * import: the loader calls `runProxy`, or `prepareAuthority` once while the code cache is made.
 */
export { prepareAuthority } from "./ProxyServer.ts"
export { runProxy } from "./ProxyProgram.ts"
