import { execFile } from "node:child_process"
import { readdir, readFile, readlink, stat } from "node:fs/promises"
import { join } from "node:path"
import { promisify } from "node:util"
import { tapName } from "../../../node/src/network/Naming.ts"
import { isProxyArgv } from "../../../node/src/proxy/ProxyLaunch.ts"

const run = promisify(execFile)

/** What the soak looks for in the node's netns and run dir: everything a session or the pool can leave. */
export interface Leaks {
  readonly taps: ReadonlyArray<string>
  readonly tables: ReadonlyArray<string>
  readonly qemu: ReadonlyArray<number>
  readonly proxies: ReadonlyArray<number>
  readonly pool: ReadonlyArray<number>
  readonly runDirs: ReadonlyArray<string>
}

interface NsProcess {
  readonly pid: number
  readonly argv: ReadonlyArray<string>
  readonly env: ReadonlyArray<string>
}

/** Every process inside `netns` (compared by the namespace's inode, like the node's Reconciler). */
export const processesIn = async (netns: string): Promise<Array<NsProcess>> => {
  const ns = `net:[${(await stat(`/run/netns/${netns}`)).ino}]`
  const found: Array<NsProcess> = []
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      if ((await readlink(`/proc/${pid}/ns/net`)) !== ns) continue
      const argv = (await readFile(`/proc/${pid}/cmdline`)).toString().split("\0")
      const env = (await readFile(`/proc/${pid}/environ`)).toString().split("\0")
      found.push({ pid, argv, env })
    } catch {
      // exited meanwhile
    }
  }
  return found
}

const isQemu = (p: NsProcess) => /qemu-system/.test(p.argv[0] ?? "")
const isProxy = (p: NsProcess) => isProxyArgv(p.argv)
const isPooled = (p: NsProcess) => p.env.some((kv) => kv.startsWith("PAWS_POOL_ID="))

export const leaks = async (netns: string, runRoot: string): Promise<Leaks> => {
  const links = JSON.parse((await run("ip", ["-n", netns, "-j", "link", "show"])).stdout) as Array<{ ifname: string }>
  const tables = JSON.parse((await run("ip", ["netns", "exec", netns, "nft", "-j", "list", "tables"])).stdout) as {
    nftables: Array<{ table?: { name: string } }>
  }
  const procs = await processesIn(netns)
  const runDirs = await readdir(runRoot).catch(() => [] as Array<string>)
  return {
    taps: links.map((l) => l.ifname).filter((n) => n.startsWith("pw")),
    tables: tables.nftables.flatMap((e) => (e.table?.name.startsWith("paws_") ? [e.table.name] : [])),
    qemu: procs.filter(isQemu).map((p) => p.pid),
    proxies: procs.filter((p) => isProxy(p) && !isPooled(p)).map((p) => p.pid),
    pool: procs.filter(isPooled).map((p) => p.pid),
    runDirs: runDirs.filter((d) => d.startsWith("vm-")),
  }
}

export const leakCount = (l: Leaks) =>
  l.taps.length + l.tables.length + l.qemu.length + l.proxies.length + l.pool.length + l.runDirs.length

/** What one session still holds (its TAP, table, QEMU, proxy, run dir); empty once released. */
export const heldBy = async (netns: string, runRoot: string, id: string): Promise<Array<string>> => {
  const l = await leaks(netns, runRoot)
  const hex = id.replace(/-/g, "")
  const held: Array<string> = []
  if (l.taps.includes(tapName(id))) held.push("tap")
  if (l.tables.includes(`paws_${hex}`)) held.push("table")
  if (l.runDirs.includes(`vm-${id}`)) held.push("runDir")
  if ((await qemuOf(netns, id)) !== undefined) held.push("qemu")
  if ((await proxyOf(netns, id)) !== undefined) held.push("proxy")
  return held
}

/** The session's VM: its QEMU process (`-name paws-<id>`). */
export const qemuOf = async (netns: string, id: string) =>
  (await processesIn(netns)).find((p) => isQemu(p) && p.argv.some((a) => a.startsWith(`paws-${id}`)))?.pid

/** Host and guest addresses of the session's TAP (the /30 host end, the permanent neighbour entry). */
export const slotOf = async (netns: string, id: string) => {
  const tap = tapName(id)
  const addrs = JSON.parse((await run("ip", ["-n", netns, "-j", "addr", "show", "dev", tap])).stdout) as Array<{
    addr_info: Array<{ family: string; local: string }>
  }>
  const neigh = JSON.parse((await run("ip", ["-n", netns, "-j", "neigh", "show", "dev", tap])).stdout) as Array<{
    dst: string
  }>
  return { hostIp: addrs[0]!.addr_info.find((a) => a.family === "inet")!.local, guestIp: neigh[0]!.dst }
}

const hexIp = (h: string) => [6, 4, 2, 0].map((i) => parseInt(h.slice(i, i + 2), 16)).join(".")

/**
 * The session's proxy. A warm (pooled) proxy carries no session label, so it is found by what it
 * listens on: the host end of the session's TAP (sockets of the process matched by inode).
 */
export const proxyOf = async (netns: string, id: string): Promise<number | undefined> => {
  const procs = (await processesIn(netns)).filter(isProxy)
  const labelled = procs.find((p) => p.env.includes(`PAWS_SESSION_ID=${id}`))
  if (labelled) return labelled.pid
  const hostIp = await slotOf(netns, id).then((s) => s.hostIp, () => undefined)
  if (hostIp === undefined) return undefined
  for (const p of procs) {
    try {
      const inodes = new Set<string>()
      for (const fd of await readdir(`/proc/${p.pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${p.pid}/fd/${fd}`).catch(() => ""))
        if (m) inodes.add(m[1]!)
      }
      const tcp = (await readFile(`/proc/${p.pid}/net/tcp`, "utf8")).split("\n").slice(1)
      for (const line of tcp) {
        const f = line.trim().split(/\s+/)
        if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9]!)) continue
        if (hexIp(f[1]!.split(":")[0]!) === hostIp) return p.pid
      }
    } catch {
      // exited meanwhile
    }
  }
  return undefined
}

/** Cuts the node's SSH connection to the guest: destroys the TCP socket in the kernel (`ss -K`). */
export const cutSsh = async (netns: string, id: string) => {
  const { guestIp } = await slotOf(netns, id)
  const r = await run("ip", ["netns", "exec", netns, "ss", "-K", "-t", "-n", "dst", guestIp, "dport", "=", ":22"])
  return r.stdout.split("\n").filter((l) => l.includes(":22")).length
}

export const runRootOf = (nodeDataDir: string) => join(nodeDataDir, "run")
