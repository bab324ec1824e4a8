import { execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { Effect } from "effect"

const source = fileURLToPath(new URL("./paws-proxy-filter.c", import.meta.url))
const python = "/usr/bin/python3"
const pythonFilter = fileURLToPath(new URL("./proxy-kernel-filter.py", import.meta.url))
/** The filter in Python (`-I -S`: no environment, user site, current directory or site module). */
export const pythonFilterArgv: ReadonlyArray<string> = existsSync(python) ? [python, "-I", "-S", pythonFilter] : []
export const defaultFilterDir = fileURLToPath(
  new URL("../../../node_modules/.cache/paws-proxy-filter", import.meta.url),
)

/**
 * Compiles paws-proxy-filter.c with gcc into `dir`, once per source version; the binary's path.
 * Every proxy's uid runs it: the directory and the binary are world-readable and executable
 * whatever the umask, and owned by whoever compiled it (a proxy can change neither).
 */
export const buildKernelFilter = async (dir: string = defaultFilterDir): Promise<string> => {
  const text = readFileSync(source)
  const out = join(dir, `paws-proxy-filter-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`)
  if (existsSync(out)) return out
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o755)
  const tmp = `${out}.${randomBytes(4).toString("hex")}`
  try {
    await promisify(execFile)("gcc", ["-Os", "-s", "-o", tmp, source])
    chmodSync(tmp, 0o755)
    renameSync(tmp, out)
  } finally {
    rmSync(tmp, { force: true })
  }
  return out
}

let compiled: string | undefined
type Prepared = { readonly path?: string; readonly error?: string }
let prepared: Promise<Prepared> | undefined

/**
 * Makes the compiled filter the one proxies start through; built once per node. Without gcc, or
 * where the build fails, proxies keep the Python filter (a warning says why): the same filter,
 * ~65 ms more CPU per proxy start.
 */
export const prepareKernelFilter: Effect.Effect<void> = Effect.promise(() =>
  prepared ??= buildKernelFilter().then(
    (path): Prepared => ({ path }),
    (error: unknown): Prepared => {
      const e = error as { stderr?: unknown; message?: unknown }
      return { error: String(e.stderr || e.message || error).trim() }
    },
  )
).pipe(
  Effect.flatMap((p) => {
    compiled = p.path
    return p.error === undefined
      ? Effect.void
      : Effect.logWarning(`proxies start through the Python kernel filter (~65 ms more CPU each): ${p.error}`)
  }),
)

/** The argv prefix that installs the kernel filter before the proxy: compiled once prepared, else Python's. */
export const kernelFilterArgv = (): ReadonlyArray<string> =>
  compiled !== undefined && existsSync(compiled) ? [compiled] : pythonFilterArgv
