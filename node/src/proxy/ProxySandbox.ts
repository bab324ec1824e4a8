import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { randomInt } from "node:crypto"
import { existsSync, realpathSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { proxyExecArgv } from "@paws/core"
import { proxyLaunchArgv, proxyMallocEnv } from "./ProxyLaunch.ts"

/**
 * How the node starts a `paws proxy` so that only the node is root. The proxy parses everything a
 * hostile guest sends; if it is ever taken over, it should hold nothing beyond its own VM's CA and
 * credentials. Every proxy (ProxyStarter's and WarmProxyPool's) is spawned here:
 *
 * - its own uid and gid (no passwd entry, no supplementary groups), a fresh one per proxy, so a
 *   proxy cannot signal, ptrace or read /proc/<pid>/mem of another VM's proxy (as it could if all
 *   ran as `nobody`). Range 0x70000000 + 24 bits: clear of login users, systemd's dynamic users and
 *   the usual container (subuid) ranges. Nothing on disk is owned by these ids;
 * - no capabilities: inheritable, ambient and bounding sets cleared by `setpriv` (util-linux), and
 *   permitted/effective go to zero with the switch away from uid 0;
 * - `no_new_privs`: no setuid binary or file capability can raise it again;
 * - a private /tmp, /var/tmp and /dev/shm (its own mount namespace with fresh tmpfs), so it sees
 *   and leaves nothing in the world-writable places shared with other processes;
 * - Landlock (no file-system changes anywhere) and a seccomp filter (no ptrace, namespaces, mount,
 *   bpf, keyrings, io_uring, …) where the kernel has them: `proxy-kernel-filter.py`, run by the
 *   system's python3 between setpriv and node. Debian 12's util-linux (2.38) `setpriv` cannot apply
 *   either (`--landlock-*` / `--seccomp-filter` came in 2.40) and nothing else in Debian does without
 *   a compiler; python3's ctypes can. Without /usr/bin/python3 this layer is skipped;
 * - Node's permission model (`--permission`): read-only file access to the program's own tree, no
 *   writes, no child processes, worker threads, native addons, WASI or inspector.
 *
 * The proxy's listeners use ephemeral ports (the VM's firewall DNATs 80/443/53 to them), so it
 * needs no capability to bind.
 *
 * Every step is an exec in place (`ip netns exec`, `unshare`, `sh -c 'exec …'`, `setpriv`, the
 * filter), so the spawned pid is the proxy's pid. A node that is not root cannot switch uid or mount
 * (it runs the proxy as its own, already unprivileged, user with the kernel filter and permission
 * model only). Node's compile cache stays off in the proxy: it may not write, and Node keys the
 * cache directory by uid anyway (a cache shared between proxies would let one poison the others).
 */
export const proxyUidBase = 0x70000000
const proxyUidSpan = 0x01000000

const kernelFilter = fileURLToPath(new URL("./proxy-kernel-filter.py", import.meta.url))
const python = "/usr/bin/python3"
/** `-I -S`: isolated (no environment, user site or current directory on the path), no site module. */
export const kernelFilterArgv: ReadonlyArray<string> = existsSync(python) ? [python, "-I", "-S", kernelFilter] : []
const programRoot = fileURLToPath(new URL("../../../", import.meta.url))

/** Everything the proxy may read: its tree and the dependencies (their real location, if linked). */
const readablePaths = (): ReadonlyArray<string> => {
  const paths = new Set([realpathSync(programRoot)])
  try {
    paths.add(realpathSync(`${programRoot}node_modules`))
  } catch {
    // no node_modules beside the program: dependencies are inside the tree
  }
  return [...paths]
}

const permissionFlags = (): ReadonlyArray<string> => [
  "--permission",
  ...readablePaths().map((p) => `--allow-fs-read=${p}`),
]

const tmpfs = (dir: string) => `mount -t tmpfs -o size=16m,mode=1777,nosuid,nodev,noexec paws-proxy-tmp ${dir}`

/**
 * The shared temp dirs the proxy gets a private tmpfs over: all of /tmp, /dev/shm and /var/tmp but
 * one that holds what the proxy runs (paws checked out under /tmp, as a CI job may be: a tmpfs
 * there would hide the program). Landlock still forbids the proxy any write in a dir left shared.
 */
export const privateTmpDirs = (): ReadonlyArray<string> => {
  const needed = [...readablePaths(), realpathSync(process.execPath), realpathSync(kernelFilter)]
  return ["/tmp", "/dev/shm", "/var/tmp"].filter((dir) =>
    existsSync(dir) && !needed.some((p) => p === dir || p.startsWith(`${dir}/`))
  )
}

/** Runs in the proxy's fresh mount namespace, before privileges are dropped. */
let tmpScript: string | undefined
// The paths do not change while the node runs: worked out at the first spawn, not at every one.
const privateTmpScript = (): string => (tmpScript ??= [...privateTmpDirs().map(tmpfs), `exec "$@"`].join(" && "))

const uidsInUse = new Set<number>()

/** A uid (also used as gid) no other proxy of this node holds; returned when the proxy exits. */
const allocateUid = (): number => {
  for (;;) {
    const uid = proxyUidBase + randomInt(1, proxyUidSpan)
    if (!uidsInUse.has(uid)) {
      uidsInUse.add(uid)
      return uid
    }
  }
}

/** The argv that runs the proxy as `uid` (undefined: the node is not root, no drop possible). */
export const proxyArgv = (netnsPrefix: ReadonlyArray<string>, uid: number | undefined): ReadonlyArray<string> =>
  sandboxArgv(netnsPrefix, uid, [process.execPath, ...permissionFlags(), ...proxyExecArgv, ...proxyLaunchArgv()])

/** `program` wrapped in the proxy's sandbox (exported for tests: the same wrapping, another program). */
export const sandboxArgv = (
  netnsPrefix: ReadonlyArray<string>,
  uid: number | undefined,
  program: ReadonlyArray<string>,
): ReadonlyArray<string> => {
  if (uid === undefined) return [...netnsPrefix, ...kernelFilterArgv, ...program]
  return [
    ...netnsPrefix,
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    privateTmpScript(),
    "paws-proxy-sandbox",
    "setpriv",
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--ambient-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
    ...kernelFilterArgv,
    ...program,
  ]
}

/** Spawns an unprivileged proxy (stdio: config in, NDJSON out, diagnostics inherited). */
export const spawnProxy = (netnsPrefix: ReadonlyArray<string>, env: Record<string, string>): ChildProcess => {
  const uid = process.getuid?.() === 0 ? allocateUid() : undefined
  const argv = proxyArgv(netnsPrefix, uid)
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ["pipe", "pipe", "inherit"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...proxyMallocEnv, ...env },
  })
  if (uid !== undefined) {
    const release = () => uidsInUse.delete(uid)
    child.once("exit", release)
    child.once("error", release)
  }
  return child
}
