import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ProxyConfig } from "../../../core/src/ProxyConfig.ts"
import { run } from "./Clients.ts"
import { startProxyProcess } from "./ProxyProcess.ts"
import type { ProxyProcess } from "./ProxyProcess.ts"
import { startTestUpstreams } from "./TestUpstreams.ts"
import type { TestUpstreams } from "./TestUpstreams.ts"

/** Names the test upstream answers; all resolve (through the proxy's override map) to it. */
export const upstreamNames = [
  "api.anthropic.com",
  "other.test",
  "echo.test",
  "sse.test",
  "duplex.test",
  "ws.test",
  "git.test",
  "a.wild.test",
  "wild.test",
  "evil.test",
]

export interface TestWorld {
  readonly dir: string
  readonly caFile: string
  readonly upstreams: TestUpstreams
  readonly proxy: ProxyProcess
  /** Credential values: must reach upstreams, never the guest, the logs or the audit. */
  readonly secrets: {
    readonly anthropic: string
    readonly echo: string
    readonly ws: string
    readonly gitToken: string
    readonly gitAuth: string
  }
  readonly bareRepo: string
  readonly close: () => Promise<void>
}

const canary = (label: string) => `paws-canary-${label}-${randomBytes(12).toString("hex")}`

export const startWorld = async (
  overrides: (base: ProxyConfig) => ProxyConfig = (c) => c,
  launch?: ReadonlyArray<string>,
): Promise<TestWorld> => {
  const dir = mkdtempSync(join(tmpdir(), "paws-proxy-test-"))
  const secrets = {
    anthropic: canary("anthropic"),
    echo: canary("echo"),
    ws: canary("ws"),
    gitToken: canary("git"),
  }
  const gitAuth = "Basic " + Buffer.from(`x-access-token:${secrets.gitToken}`).toString("base64")
  const bareRepo = join(dir, "repo.git")
  await run("git", ["init", "-q", "--bare", "-b", "main", bareRepo])
  await run("git", ["-C", bareRepo, "config", "http.receivepack", "true"])
  const upstreams = await startTestUpstreams({ gitRoot: dir, gitAuth })
  const resolve = Object.fromEntries(upstreamNames.map((n) => [n, { address: "127.0.0.1", port: upstreams.port }]))
  const config = overrides({
    listen: { address: "127.0.0.1", https: 0, http: 0, dns: 0 },
    dnsAnswer: "10.200.0.1",
    allowOut: upstreamNames.filter((n) => n !== "evil.test" && n !== "wild.test" && n !== "a.wild.test").concat(
      "*.wild.test",
    ),
    credentials: {
      "api.anthropic.com": { headers: { "x-api-key": secrets.anthropic } },
      "echo.test": { headers: { authorization: `Bearer ${secrets.echo}` } },
      "ws.test": { headers: { authorization: `Bearer ${secrets.ws}` } },
      "git.test": { headers: { authorization: gitAuth } },
    },
    upstream: { caBundlePem: upstreams.caPem, resolve, allowPrivateUpstreams: true },
    limits: { headersTimeoutMs: 1500 },
  })
  const proxy = await startProxyProcess(config, launch)
  const caFile = join(dir, "per-vm-ca.pem")
  writeFileSync(caFile, proxy.caPem)
  return {
    dir,
    caFile,
    upstreams,
    proxy,
    secrets: { ...secrets, gitAuth },
    bareRepo,
    close: async () => {
      await proxy.stop()
      // Every world, whatever its tests did: no credential value in anything the proxy wrote.
      const written = proxy.stdoutLines.join("\n") + proxy.stderr()
      for (const [name, value] of Object.entries({ ...secrets, gitAuth })) {
        if (written.includes(value)) throw new Error(`credential ${name} appeared in the proxy's output`)
      }
      await upstreams.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** curl arguments that reach `host` through the proxy's HTTPS listener, trusting only the per-VM CA. */
export const viaProxy = (world: TestWorld, host: string, path = "/") => [
  "--resolve",
  `${host}:${world.proxy.ports.https}:127.0.0.1`,
  "--cacert",
  world.caFile,
  `https://${host}:${world.proxy.ports.https}${path}`,
]
