import { readFileSync } from "node:fs"
import { descendants } from "../node/src/NodeCapacity.ts"

/** CPU ms a process used: its own (utime + stime), and its reaped children's (cutime + cstime). */
export const cpuMs = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
  const tick = 10 // USER_HZ is 100 on Linux
  return { own: (f[11]! + f[12]!) * tick, children: (f[13]! + f[14]!) * tick }
}

/** CPU ms so far of this process (the node), the helpers it reaped, and its live QEMUs and proxies. */
export const nodeCpu = () => {
  const self = cpuMs(process.pid)
  const out = { node: self.own, helpers: self.children, qemu: 0, proxy: 0 }
  for (const p of descendants(process.pid)) {
    try {
      const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, "utf8")
      const cpu = cpuMs(p.pid).own
      if (p.qemu) out.qemu += cpu
      else if (/proxy/.test(cmdline)) out.proxy += cpu
    } catch {
      // exited meanwhile
    }
  }
  return out
}
