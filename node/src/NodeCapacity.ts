import { Effect, Layer } from "effect"
import { readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/**
 * How many VMs a node takes when PAWS_NODE_MAX_VMS is unset: as many as fit in the host's available
 * memory (MemAvailable, 90% of it) at the per-VM cost this node last measured (PSS of its QEMU and
 * proxy processes over its VMs, kept in `<data dir>/vm-cost.json`), or, before any VM ran here, at
 * an estimate (the default snapshot's guest RAM plus QEMU and proxy overhead). Not cores: a sleeping
 * session costs memory, not CPU. The `basis` says why, for `paws nodes`.
 */
export interface CapacityPlan {
  readonly maxVms: number
  readonly basis: string
}

export interface VmCost {
  readonly perVmMiB: number
  /** VMs the measurement was taken over. */
  readonly vms: number
  readonly measuredAt: string
}

/** Before any VM was measured: a 256 MiB guest fully touched plus QEMU (~60 MiB) and proxy (~45 MiB). */
export const estimatedPerVmMiB = 360
const usableShare = 0.9
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`

export const planCapacity = (availableBytes: number, cost: VmCost | undefined): CapacityPlan => {
  const perVmMiB = cost?.perVmMiB ?? estimatedPerVmMiB
  const maxVms = Math.max(1, Math.floor((availableBytes * usableShare) / (perVmMiB * 2 ** 20)))
  const how = cost === undefined ? "estimated (no VM measured on this node yet)" : `measured over ${cost.vms} VMs`
  return {
    maxVms,
    basis: `${maxVms} VMs: ${gib(availableBytes)} available / ${Math.round(perVmMiB)} MiB per VM ${how}`,
  }
}

export const fixedCapacity = (maxVms: number): CapacityPlan => ({ maxVms, basis: `PAWS_NODE_MAX_VMS=${maxVms}` })

/** MemAvailable (what can be allocated without swapping), falling back to free memory. */
export const availableMemoryBytes = (): number => {
  try {
    const line = readFileSync("/proc/meminfo", "utf8").split("\n").find((l) => l.startsWith("MemAvailable:"))
    if (line !== undefined) return Number.parseInt(line.split(/\s+/)[1]!, 10) * 1024
  } catch {
    // not Linux: below
  }
  return os.freemem()
}

const costFile = (dataDir: string) => path.join(dataDir, "vm-cost.json")

export const readVmCost = (dataDir: string): VmCost | undefined => {
  try {
    const v = JSON.parse(readFileSync(costFile(dataDir), "utf8")) as Partial<VmCost>
    const ok = typeof v.perVmMiB === "number" && v.perVmMiB > 0 && typeof v.vms === "number" && v.vms > 0
    return ok ? { perVmMiB: v.perVmMiB!, vms: v.vms!, measuredAt: String(v.measuredAt) } : undefined
  } catch {
    return undefined // none yet, or unreadable: the estimate
  }
}

export const writeVmCost = (dataDir: string, cost: VmCost): void => {
  const file = costFile(dataDir)
  writeFileSync(`${file}.tmp`, JSON.stringify(cost) + "\n")
  renameSync(`${file}.tmp`, file)
}

const pssKiB = (pid: number): number => {
  const line = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8").split("\n").find((l) => l.startsWith("Pss:"))
  return line === undefined ? 0 : Number.parseInt(line.split(/\s+/)[1]!, 10)
}

/** Every process below `root`, with its PSS and whether it is a QEMU. */
export const descendants = (root: number): ReadonlyArray<{ pid: number; pssKiB: number; qemu: boolean }> => {
  const children = new Map<number, Array<{ pid: number; comm: string }>>()
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8")
      const close = stat.lastIndexOf(")")
      const ppid = Number(stat.slice(close + 2).split(" ")[1])
      const list = children.get(ppid) ?? []
      list.push({ pid: Number(name), comm: stat.slice(stat.indexOf("(") + 1, close) })
      children.set(ppid, list)
    } catch {
      // exited meanwhile
    }
  }
  const out: Array<{ pid: number; pssKiB: number; qemu: boolean }> = []
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      try {
        out.push({ pid: c.pid, pssKiB: pssKiB(c.pid), qemu: c.comm.startsWith("qemu-system") })
      } catch {
        // exited meanwhile
      }
      walk(c.pid)
    }
  }
  walk(root)
  return out
}

/** The node's per-VM cost now: PSS of everything it spawned (QEMU, proxies, helpers) per running QEMU. */
export const measureVmCost = (root = process.pid): VmCost | undefined => {
  const all = descendants(root)
  const vms = all.filter((p) => p.qemu).length
  if (vms === 0) return undefined
  const total = all.reduce((sum, p) => sum + p.pssKiB, 0)
  return { perVmMiB: Math.round((total / 1024 / vms) * 10) / 10, vms, measuredAt: new Date().toISOString() }
}

/**
 * Measures the per-VM cost every minute while VMs run and keeps the latest in the data dir: the
 * next start of this node derives its capacity from it. Measurements over more VMs replace fewer
 * (one VM carries the proxy pool's and page-cache sharing's overhead alone).
 */
export const VmCostSampler = (dataDir: string): Layer.Layer<never> =>
  Layer.effectDiscard(
    Effect.sync(() => {
      const cost = measureVmCost()
      if (cost === undefined) return
      const kept = readVmCost(dataDir)
      const stale = kept === undefined || Date.parse(kept.measuredAt) < Date.now() - 24 * 3600_000
      if (stale || cost.vms >= kept.vms) writeVmCost(dataDir, cost)
    }).pipe(
      Effect.catchCause(() => Effect.void),
      Effect.delay("60 seconds"),
      Effect.forever,
      Effect.forkScoped,
    ),
  )
