// Test upstreams (proxy/test/support/TestUpstreams.ts) run INSIDE a test netns:
//   ip netns exec NS node upstream-child.ts     stdin: {"gitAuth": "..."}\n
// stdout: {"port", "caPem"} once listening, then one {"received": …} line per request.
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { startTestUpstreams } from "../../../proxy/test/support/TestUpstreams.ts"

const line = await new Promise<string>((resolve) => createInterface({ input: process.stdin }).once("line", resolve))
const { gitAuth } = JSON.parse(line) as { gitAuth: string }
const dir = mkdtempSync(join(tmpdir(), "paws-upstream-"))
const git = (...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd: dir, stdio: "pipe" })
git("init", "-q", "-b", "main", "src")
writeFileSync(join(dir, "src", "README"), "hello from the test upstream\n")
git("-C", "src", "add", ".")
git("-C", "src", "commit", "-q", "-m", "initial")
git("clone", "-q", "--bare", "src", "repo.git")
const upstreams = await startTestUpstreams({ gitRoot: dir, gitAuth })
const push = upstreams.received.push.bind(upstreams.received)
upstreams.received.push = (...items) => {
  for (const r of items) process.stdout.write(JSON.stringify({ received: r }) + "\n")
  return push(...items)
}
process.stdout.write(JSON.stringify({ port: upstreams.port, caPem: upstreams.caPem }) + "\n")
const stop = () => {
  rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}
process.on("SIGTERM", stop)
process.stdin.on("end", stop)
