/**
 * bench:proxy's baseline: the proxy as a V8 startup snapshot, how the node started proxies before
 * the bundle with its code cache (proxy/src/ProxyBundleBuild.ts). Same bundle, run once under
 * `node --build-snapshot` after the warm-up the node's snapshot had (one throw-away CA); a proxy started with
 * `--snapshot-blob` deserialises that heap and calls `runProxy`. Built into `dir` on every run.
 */
import { execFileSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { bundleProxy } from "../proxy/src/ProxyBundleBuild.ts"

/** One file: a snapshot's entry can require only Node's built-ins, so the bundle is inlined. */
const entrySource = (bundle: string) =>
  `const { startupSnapshot } = require("node:v8")
const proxy = (() => {
  const module = { exports: {} }
  const exports = module.exports
${bundle}
  return module.exports
})()
void proxy.prepareAuthority()
startupSnapshot.setDeserializeMainFunction(() => proxy.runProxy())
`

export const buildSnapshotBaseline = async (dir: string): Promise<string> => {
  const code = await bundleProxy()
  if (code === undefined) throw new Error("rolldown is not installed: no proxy bundle to snapshot")
  writeFileSync(join(dir, "entry.cjs"), entrySource(code))
  const blob = join(dir, "proxy.blob")
  execFileSync(process.execPath, ["--snapshot-blob", blob, "--build-snapshot", "entry.cjs"], { cwd: dir, env: {} })
  return blob
}
