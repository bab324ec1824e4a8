import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

/**
 * Builds the proxy's startup snapshot: the proxy bundled into one CommonJS file (rolldown), run
 * once under `node --build-snapshot`, its initialised heap written to a blob. A proxy started with
 * `node --snapshot-blob <blob>` deserialises that heap instead of reading, compiling and running
 * every module, then makes its own CA (ProxySnapshot.ts). The blob is named after a hash of the
 * sources it is built from (proxy and core, the lock file) and of the Node binary (a blob only loads
 * in the Node that built it), so a changed proxy or Node gets a new blob and an unchanged one is
 * reused across node restarts without bundling again (hashing the sources takes milliseconds).
 *
 * Returns undefined when rolldown (a dependency of the proxy package) is missing: the proxy then runs from
 * source, as before.
 */
const entry = fileURLToPath(new URL("./ProxySnapshot.ts", import.meta.url))
const root = fileURLToPath(new URL("../../", import.meta.url))
export const defaultSnapshotDir = join(root, "node_modules/.cache/paws-proxy-snapshot")

const sourceKey = (nodePath: string): string => {
  const hash = createHash("sha256").update(`${process.version}\0${nodePath}\0`)
  for (const dir of ["proxy/src", "core/src"]) {
    for (const name of readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).sort()) {
      if (name.endsWith(".ts")) hash.update(`${dir}/${name}\0`).update(readFileSync(join(root, dir, name)))
    }
  }
  const lock = join(root, "package-lock.json")
  if (existsSync(lock)) hash.update(readFileSync(lock))
  return hash.digest("hex").slice(0, 16)
}

const bundle = async (): Promise<string | undefined> => {
  let rolldown: typeof import("rolldown")
  try {
    rolldown = await import("rolldown")
  } catch {
    return undefined
  }
  const out = await rolldown.build({
    input: entry,
    platform: "node",
    logLevel: "silent",
    write: false,
    output: { format: "cjs", minify: true },
  })
  return out.output[0].code
}

/** Blobs of earlier sources (~8 MiB each) go once an hour old: a proxy reads its blob only as it starts. */
const removeOldBlobs = (dir: string, keep: string) => {
  for (const name of readdirSync(dir)) {
    const file = join(dir, name)
    if (file === keep || !/^proxy-[0-9a-f]{16}\.blob$/.test(name)) continue
    try {
      if (statSync(file).mtimeMs < Date.now() - 3600_000) rmSync(file, { force: true })
    } catch {
      // removed meanwhile
    }
  }
}

export const buildProxySnapshot = async (
  dir: string = defaultSnapshotDir,
  nodePath: string = process.execPath,
): Promise<string | undefined> => {
  const blob = join(dir, `proxy-${sourceKey(nodePath)}.blob`)
  if (existsSync(blob)) return blob
  const code = await bundle()
  if (code === undefined) return undefined
  mkdirSync(dir, { recursive: true })
  const work = join(dir, `build-${process.pid}-${Date.now()}`)
  mkdirSync(work)
  try {
    writeFileSync(join(work, "proxy.cjs"), code)
    await promisify(execFile)(
      nodePath,
      ["--snapshot-blob", join(work, "proxy.blob"), "--build-snapshot", "proxy.cjs"],
      {
        cwd: work,
        env: {},
      },
    )
    renameSync(join(work, "proxy.blob"), blob) // atomic: a concurrent spawn sees the whole blob or none
    removeOldBlobs(dir, blob)
    return blob
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
