import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { createInterface } from "node:readline"
import { decodeProxyMessageLine, encodeProxyConfigLine, proxyExecArgv } from "@paws/core/ProxyConfig"

/**
 * Builds what every proxy starts from: the proxy bundled into one minified CommonJS file
 * (rolldown) and, beside it, the V8 code cache of that file (`.code`), made by one proxy started
 * from it on loopback with the proxy's own V8 flags (which V8 checks) and stopped once ready.
 * A proxy then runs `node ProxyLoader.cjs <bundle>`: one file read, no module resolution, no type
 * stripping, and compiled code for what a start runs. Against the startup snapshot this replaced:
 * as fast to ready and ~5 MiB less private memory per proxy. Node keeps a user snapshot's whole
 * blob in the process's own memory for its life (an empty one adds 6.4 MiB private), where its
 * built-in snapshot is part of the binary, shared by every process.
 *
 * Named after a hash of the sources it is built from (proxy and core, the lock file, the loader)
 * and of the Node binary (V8 rejects a cache from another version), so a changed proxy or Node gets
 * a new bundle and an unchanged one is reused across node restarts without bundling again.
 *
 * Returns undefined when rolldown (a dependency of the proxy package) is missing: the proxy then runs from
 * source, as before.
 */
const entry = fileURLToPath(new URL("./ProxyBundle.ts", import.meta.url))
/** Runs a proxy from its bundle: `node <proxyLoader> <bundle>`. */
export const proxyLoader = fileURLToPath(new URL("./ProxyLoader.cjs", import.meta.url))
const root = fileURLToPath(new URL("../../", import.meta.url))
export const defaultBundleDir = join(root, "node_modules/.cache/paws-proxy-bundle")
const built = /^proxy-([0-9a-f]{16})\.(cjs|code)$/

const sourceKey = (nodePath: string): string => {
  const hash = createHash("sha256").update(`${process.version}\0${nodePath}\0${proxyExecArgv.join(" ")}\0`)
  for (const dir of ["proxy/src", "core/src"]) {
    for (const name of readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).sort()) {
      if (/\.(ts|cjs)$/.test(name)) hash.update(`${dir}/${name}\0`).update(readFileSync(join(root, dir, name)))
    }
  }
  const lock = join(root, "package-lock.json")
  if (existsSync(lock)) hash.update(readFileSync(lock))
  return hash.digest("hex").slice(0, 16)
}

/** The proxy as one minified CommonJS file; undefined without rolldown. */
export const bundleProxy = async (): Promise<string | undefined> => {
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

/**
 * Builds of earlier sources go once unused for an hour (a proxy reads its bundle only as it
 * starts; ProxyLaunch marks the one in use). A key's age is its bundle's mtime.
 */
const removeOldBuilds = (dir: string, keep: string) => {
  const now = Date.now()
  for (const name of readdirSync(dir)) {
    const key = built.exec(name)?.[1]
    if (key === undefined || key === keep) continue
    try {
      const bundleFile = join(dir, `proxy-${key}.cjs`)
      const usedAt = existsSync(bundleFile) ? statSync(bundleFile).mtimeMs : statSync(join(dir, name)).mtimeMs
      if (usedAt < now - 3600_000) rmSync(join(dir, name), { force: true })
    } catch {
      // removed meanwhile
    }
  }
}

/**
 * One proxy from `bundle` on loopback, to ready and stopped: as it exits, it writes the code cache.
 * Bounded: a proxy that is not ready and gone within `timeoutMs` is killed and the build fails
 * (proxies then start from source), so a node never waits on it forever.
 */
export const writeCodeCache = (nodePath: string, bundle: string, cache: string, cwd: string, timeoutMs = 60_000) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(nodePath, [...proxyExecArgv, proxyLoader, bundle, "--write-code-cache", cache], {
      cwd,
      env: {},
      stdio: ["pipe", "pipe", "pipe"],
    })
    let stderr = ""
    const timer = setTimeout(() => {
      stderr += `no ready and exit within ${timeoutMs} ms`
      child.kill("SIGKILL")
    }, timeoutMs)
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    createInterface({ input: child.stdout }).on("line", (line) => {
      let ready = false
      try {
        ready = decodeProxyMessageLine(line)._tag === "ready"
      } catch {
        // not a protocol line: ignored, as the node ignores it
      }
      if (ready) child.stdin.end()
    })
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      if (code === 0 && existsSync(cache)) resolve()
      else reject(new Error(`code cache not written (exit ${code}): ${stderr}`))
    })
    child.stdin.write(encodeProxyConfigLine({
      listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
      dnsAnswer: "127.0.0.1",
      allowOut: ["example.test"],
      credentials: {},
    }))
  })

/** The bundle's path (its code cache beside it), built now unless this sources' build is there. */
export const buildProxyBundle = async (
  dir: string = defaultBundleDir,
  nodePath: string = process.execPath,
): Promise<string | undefined> => {
  const key = sourceKey(nodePath)
  const target = join(dir, `proxy-${key}.cjs`)
  if (existsSync(target)) return target
  const code = await bundleProxy()
  if (code === undefined) return undefined
  mkdirSync(dir, { recursive: true })
  const work = join(dir, `build-${process.pid}-${Date.now()}`)
  mkdirSync(work)
  try {
    writeFileSync(join(work, "proxy.cjs"), code)
    await writeCodeCache(nodePath, join(work, "proxy.cjs"), join(work, "proxy.code"), work)
    // The bundle last, each rename atomic: a concurrent spawn finds the bundle with its cache, or neither.
    renameSync(join(work, "proxy.code"), join(dir, `proxy-${key}.code`))
    renameSync(join(work, "proxy.cjs"), target)
    removeOldBuilds(dir, key)
    return target
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
