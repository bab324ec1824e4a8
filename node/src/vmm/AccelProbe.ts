import { Effect } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type { Accelerator } from "./Vmm.ts"

/**
 * Whether KVM really runs guests: /dev/kvm can exist and still fail (nested hosts abort on MSR
 * writes, or hang). So boot the kernel under KVM with no root: it must panic, and with
 * `panic=-1 -no-reboot` QEMU exits 0 having printed "Kernel panic". Anything else is TCG.
 */
export const probeKvm = (kernelPath: string, timeoutMs = 10_000): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    try {
      await fs.access("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK)
    } catch {
      return false
    }
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "paws-kvm-probe-"))
    const consoleLog = path.join(dir, "console.log")
    try {
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn("qemu-system-x86_64", [
          ...["-M", "microvm,acpi=on", "-accel", "kvm", "-cpu", "host", "-m", "128", "-smp", "1"],
          ...["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"],
          ...["-serial", `file:${consoleLog}`, "-kernel", kernelPath],
          ...["-append", `console=ttyS0 panic=-1 reboot=t pci=off 8250.nr_uarts=1 ${tscArgs()}`],
        ], { stdio: "ignore" })
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
        child.on("error", () => resolve(-1))
        child.on("exit", (c) => {
          clearTimeout(timer)
          resolve(c)
        })
      })
      const text = await fs.readFile(consoleLog, "utf8").catch(() => "")
      return code === 0 && text.includes("Kernel panic")
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

export const decideAccelerator = (
  wanted: "kvm" | "tcg" | "auto",
  kernelPath: string,
): Effect.Effect<Accelerator> =>
  wanted === "auto"
    ? probeKvm(kernelPath).pipe(Effect.map((ok): Accelerator => ok ? "kvm" : "tcg"))
    : Effect.succeed(wanted)

/**
 * `tsc_early_khz=<host kHz> tsc=reliable`: microvm has no HPET/PM timer, so a guest that fails
 * PIT calibration on a busy host marks the TSC unstable and hangs; telling it the rate avoids that.
 */
export const tscArgs = (): string => {
  try {
    const cpuinfo = readFileSync("/proc/cpuinfo", "utf8")
    const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo)?.[1]
    return mhz ? `tsc_early_khz=${Math.round(Number(mhz) * 1000)} tsc=reliable` : "tsc=reliable"
  } catch {
    return "tsc=reliable"
  }
}
