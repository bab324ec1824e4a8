import { assert, beforeAll, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { buildKernelFilter, pythonFilterArgv } from "../src/proxy/ProxyKernelFilter.ts"
import { proxyUidBase, sandboxArgv } from "../src/proxy/ProxySandbox.ts"

let compiled: ReadonlyArray<string> = []
beforeAll(async () => {
  // gcc and python3 are both there (.ci/setup): each filter is tested, the same way. The compiled
  // one where the node keeps it (under node_modules/.cache, which the sandbox leaves visible).
  compiled = [await buildKernelFilter()]
  assert.isNotEmpty(pythonFilterArgv, "python3 is there to run the Python kernel filter")
})

/** Runs `program` exactly as a proxy is run (private /tmp, own uid, no caps, kernel `filter`). */
const sandboxed = (filter: ReadonlyArray<string>, program: ReadonlyArray<string>) => {
  const argv = sandboxArgv([], proxyUidBase + 0xfffff0, program, filter)
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 20_000 })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

describe.each([
  ["compiled (paws-proxy-filter.c)", () => compiled],
  ["Python (proxy-kernel-filter.py)", () => pythonFilterArgv],
])("proxy sandbox, kernel filter %s", (_name, filter) => {
  it("refuses file-system writes (Landlock) even in the proxy's own private /tmp", () => {
    const r = sandboxed(filter(), [
      process.execPath,
      "-e",
      "try { require('fs').writeFileSync('/tmp/probe', 'x'); console.log('WROTE') } catch (e) { console.log(e.code) }",
    ])
    assert.strictEqual(r.out.trim(), "EACCES", r.out)
    // ... while the same process can read, and its uid is the one asked for.
    const id = sandboxed(filter(), ["/usr/bin/id", "-u"])
    assert.strictEqual(id.out.trim(), String(proxyUidBase + 0xfffff0), id.out)
  })

  it("refuses new namespaces (seccomp), which an unprivileged user could otherwise make", () => {
    const r = sandboxed(filter(), ["/usr/bin/unshare", "--user", "true"])
    assert.notStrictEqual(r.code, 0, r.out)
    assert.include(r.out, "Operation not permitted")
    const status = sandboxed(filter(), ["/bin/grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"])
    assert.match(status.out, /NoNewPrivs:\s+1/)
    assert.match(status.out, /Seccomp:\s+2/)
  })
})
