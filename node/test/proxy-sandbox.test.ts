import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { proxyUidBase, sandboxArgv } from "../src/proxy/ProxySandbox.ts"

/** Runs `program` exactly as a proxy is run (private /tmp, own uid, no caps, kernel filter). */
const sandboxed = (program: ReadonlyArray<string>) => {
  const argv = sandboxArgv([], proxyUidBase + 0xfffff0, program)
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 20_000 })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

describe("proxy sandbox", () => {
  it("the kernel filter refuses file-system writes (Landlock) even in the proxy's own private /tmp", () => {
    const r = sandboxed([
      process.execPath,
      "-e",
      "try { require('fs').writeFileSync('/tmp/probe', 'x'); console.log('WROTE') } catch (e) { console.log(e.code) }",
    ])
    assert.strictEqual(r.out.trim(), "EACCES", r.out)
    // ... while the same process can read, and its uid is the one asked for.
    const id = sandboxed(["/usr/bin/id", "-u"])
    assert.strictEqual(id.out.trim(), String(proxyUidBase + 0xfffff0), id.out)
  })

  it("the kernel filter refuses new namespaces (seccomp), which an unprivileged user could otherwise make", () => {
    const r = sandboxed(["/usr/bin/unshare", "--user", "true"])
    assert.notStrictEqual(r.code, 0, r.out)
    assert.include(r.out, "Operation not permitted")
    const status = sandboxed(["/bin/grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"])
    assert.match(status.out, /NoNewPrivs:\s+1/)
    assert.match(status.out, /Seccomp:\s+2/)
  })
})
