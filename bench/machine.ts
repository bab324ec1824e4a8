import { execFileSync } from "node:child_process"
import { cpus, loadavg, totalmem } from "node:os"

/** The machine a bench ran on, for its results file: CPUs, Node, memory, and its load (`loadAtStart`, now). */
export const describeMachine = (loadAtStart: ReadonlyArray<number>) => ({
  cpus: cpus().length,
  model: cpus()[0]?.model,
  node: process.version,
  memTotalMiB: Math.round(totalmem() / 2 ** 20),
  loadavgAtStart: loadAtStart,
  loadavg: loadavg(),
  uptime: execFileSync("uptime", { encoding: "utf8" }).trim(),
})
