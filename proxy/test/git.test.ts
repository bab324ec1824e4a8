import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { run } from "./support/Clients.ts"
import { startWorld } from "./support/TestWorld.ts"
import type { TestWorld } from "./support/TestWorld.ts"

let world: TestWorld
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

/** git as the guest runs it: no credential anywhere, trusting only the per-VM CA, every name → the proxy. */
const git = (args: ReadonlyArray<string>, cwd = world.dir) =>
  run("git", [
    "-c",
    `http.sslCAInfo=${world.caFile}`,
    "-c",
    `http.curloptResolve=git.test:${world.proxy.ports.https}:127.0.0.1`,
    "-c",
    "user.name=agent",
    "-c",
    "user.email=agent@example.invalid",
    ...args,
  ], { cwd, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: world.dir, GIT_TERMINAL_PROMPT: "0" } })

describe("proxy: git smart HTTP through the proxy", () => {
  it("clones and pushes with the Authorization header injected by the proxy", async () => {
    const url = `https://git.test:${world.proxy.ports.https}/repo.git`
    const work = join(world.dir, "work")
    await git(["clone", "-q", url, work])
    // Incompressible and above git's 1 MiB http.postBuffer, so the push goes out as a chunked upload.
    writeFileSync(join(work, "big.bin"), randomBytes(1536 * 1024))
    writeFileSync(join(work, "README"), "pushed through paws\n")
    await git(["add", "."], work)
    await git(["commit", "-q", "-m", "through the proxy"], work)
    await git(["push", "-q", "origin", "HEAD:main"], work)

    const log = await run("git", ["-C", world.bareRepo, "log", "--format=%s", "main"])
    assert.include(log, "through the proxy")
    const fresh = join(world.dir, "fresh")
    await git(["clone", "-q", url, fresh])
    assert.strictEqual(await run("cat", [join(fresh, "README")]), "pushed through paws\n")

    const gitRequests = world.upstreams.received.filter((r) => r.host === "git.test")
    const pushes = gitRequests.filter((r) => r.url.includes("git-receive-pack") && r.method === "POST")
    assert.isTrue(pushes.some((r) => r.headers["transfer-encoding"] === "chunked"))
    for (const r of gitRequests) assert.strictEqual(r.headers["authorization"], world.secrets.gitAuth)
    const pushAudit = await world.proxy.waitForAudit((e) =>
      e.host === "git.test" && e.method === "POST" && (e.path ?? "").endsWith("git-receive-pack") &&
      (e.bytesIn ?? 0) > 1024 * 1024
    )
    assert.deepStrictEqual(pushAudit.injected, ["authorization"])
    assert.strictEqual(pushAudit.status, 200)
  })
})
