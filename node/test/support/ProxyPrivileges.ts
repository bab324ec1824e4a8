import { assert } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { kernelFilterArgv, privateTmpDirs, proxyUidBase } from "../../src/proxy/ProxySandbox.ts"

/** The privilege-relevant lines of /proc/<pid>/status, plus what the process has mounted on /tmp. */
export const privilegesOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const field = (name: string) => status.match(new RegExp(`^${name}:[ \\t]*(.*)$`, "m"))?.[1]?.trim() ?? ""
  const ids = (name: string) => field(name).split(/\s+/).map(Number)
  const tmp = readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n").filter((l) => l.split(" ")[4] === "/tmp")
  return {
    uids: ids("Uid"),
    gids: ids("Gid"),
    groups: field("Groups"),
    caps: ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map((c) => `${c}=${field(c)}`),
    noNewPrivs: field("NoNewPrivs"),
    seccomp: field("Seccomp"),
    tmpMount: tmp.at(-1)?.split(" - ")[1]?.split(" ")[0] ?? "",
    cmdline: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"),
  }
}

export type Privileges = ReturnType<typeof privilegesOf>

/** Issue 10: a proxy runs as its own non-root uid/gid, with no capabilities at all, no_new_privs, a private /tmp. */
export const assertUnprivileged = (pid: number): number => assertUnprivilegedStatus(pid, privilegesOf(pid))

export const assertUnprivilegedStatus = (pid: number, p: Privileges): number => {
  const uid = p.uids[0]!
  assert.isAtLeast(uid, proxyUidBase, `proxy ${pid} uid ${p.uids.join(" ")}`)
  assert.deepStrictEqual(p.uids, [uid, uid, uid, uid], "real, effective, saved and fs uid")
  assert.deepStrictEqual(p.gids, [uid, uid, uid, uid], "real, effective, saved and fs gid")
  assert.strictEqual(p.groups, "", "no supplementary groups")
  assert.deepStrictEqual(p.caps, ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map((c) => `${c}=0000000000000000`))
  assert.strictEqual(p.noNewPrivs, "1")
  assert.isNotEmpty(kernelFilterArgv, "python3 is there to install the kernel filter (.ci/setup)")
  assert.strictEqual(p.seccomp, "2", "a seccomp filter is installed")
  // A private tmpfs on /tmp, unless paws itself runs from under /tmp (ProxySandbox.privateTmpDirs).
  if (privateTmpDirs().includes("/tmp")) assert.strictEqual(p.tmpMount, "tmpfs", "a private tmpfs on /tmp")
  assert.include(p.cmdline, "--permission")
  return uid
}
