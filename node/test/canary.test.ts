import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Stream } from "effect"
import { newSessionId, type NodeSessionEvent, type SessionDispatch } from "@paws/core"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { labelledProcesses } from "../src/network/Reconciler.ts"
import { filesUnder, type Finding, needlesOf, newCanary, scanFile, scanText } from "./support/CanaryScan.ts"
import {
  exeOf,
  exitOf,
  freePort,
  nodeProcess,
  processArgvEnv,
  scanProcessMemory,
  upstreamsIn,
} from "./support/CanaryWorld.ts"
import { makeNetns } from "./support/Netns.ts"
import { nodeClient } from "./support/NodeClient.ts"
import { testDataDir } from "./support/TestImage.ts"
import { leftovers, upstreamNames } from "./support/TestNode.ts"

/**
 * Secret canaries: a session whose credentials are unique `canary-<hex>` values uses all of them
 * (HTTPS header injection, git over HTTPS with Basic auth, an upstream that echoes the header
 * back); then the guest's RAM (QEMU's whole address space), its disk overlay and run dir, the
 * node's and the proxies' output, every RPC event (audit included) and the argv/env of every
 * session process are scanned for the canaries raw and encoded. A guest-visible marker must be
 * found in RAM and on disk, and the canaries where they belong (the upstreams), so the scans are
 * proven able to find what they look for.
 */
const canaryApi = newCanary()
const canaryEcho = newCanary()
const canaryGit = newCanary()
const gitAuth = `Basic ${Buffer.from(`x-access-token:${canaryGit}`).toString("base64")}`
const needles = [canaryApi, canaryEcho, canaryGit].flatMap(needlesOf)
const visible = `visible-${crypto.randomUUID()}`
const visibleNeedles = needlesOf(visible).filter((n) => n.encoding === "raw")

const script = `
printf '%s\\n' "$VISIBLE" > /root/visible.txt
curl -sS -D /root/api.h -o /root/api.b -H 'x-api-key: guest-made-up' https://api.test/v1/messages; echo "api=$?"
curl -sS -D /root/echo.h -o /root/echo.b -H 'authorization: Bearer guest' -d hello https://echo.test/echo; echo "echo=$?"
cat /root/echo.h /root/echo.b
git clone -q https://git.test/repo.git /root/repo && echo "clone=$(cat /root/repo/README)"
env > /root/env.txt; ps > /root/ps.txt; dmesg > /root/dmesg.txt
sync
echo ready
sleep 300
`

describe("secret canaries (node level, real node process, real VM)", () => {
  it.live(
    "no canary in guest RAM, guest disk, node/proxy logs, RPC events or process argv/env",
    () =>
      Effect.scoped(Effect.gen(function* () {
        const ns = yield* makeNetns("canary")
        const upstreams = yield* upstreamsIn(ns, gitAuth)
        const port = yield* freePort
        const token = `tok-${crypto.randomUUID()}`
        const node = yield* nodeProcess({
          PAWS_NODE_NETNS: ns,
          PAWS_NODE_TOKEN: token,
          PAWS_NODE_HOST: "127.0.0.1",
          PAWS_NODE_PORT: String(port),
          PAWS_NODE_POOL: "172.16.3.0/24",
          PAWS_DATA_DIR: testDataDir,
          PAWS_NODE_PROXY_UPSTREAM: JSON.stringify({
            caBundlePem: upstreams.caPem,
            resolve: Object.fromEntries(upstreamNames.map((n) => [n, { address: "127.0.0.1", port: upstreams.port }])),
            allowPrivateUpstreams: true,
          }),
        })
        yield* Effect.promise(async () => {
          for (let i = 0; i < 400 && !node.log().includes("Listening"); i++) await new Promise((r) => setTimeout(r, 50))
        })
        assert.include(node.log(), "Listening", node.log())
        const client = yield* nodeClient(`ws://127.0.0.1:${port}/rpc`, token)

        const dispatch: SessionDispatch = {
          sessionId: newSessionId(),
          snapshot: "default",
          workload: { type: "script", script, env: { VISIBLE: visible } },
          resources: { vcpus: 1, memoryMB: 256 },
          timeoutMs: 300_000,
          network: {
            allowOut: ["api.test", "echo.test", "git.test"],
            credentials: {
              "api.test": { headers: { "x-api-key": canaryApi } },
              "echo.test": { headers: { authorization: `Bearer ${canaryEcho}` } },
              "git.test": { headers: { authorization: gitAuth } },
            },
          },
        }
        const events: Array<NodeSessionEvent> = []
        const ready = yield* Deferred.make<void>()
        const fiber = yield* client.RunSession(dispatch).pipe(
          Stream.runForEach((e) =>
            Effect.sync(() => events.push(e)).pipe(
              Effect.andThen(
                e._tag === "output" && e.data.includes("ready") ? Deferred.succeed(ready, undefined) : Effect.void,
              ),
            )
          ),
          Effect.forkChild,
        )
        yield* Deferred.await(ready).pipe(
          Effect.raceFirst(Fiber.await(fiber)),
          Effect.timeout(200_000),
          Effect.orDie,
        )
        assert.isTrue(yield* Deferred.isDone(ready), `session ended before ready: ${JSON.stringify(events)}`)

        // While the VM runs: its processes, its RAM, its run dir.
        const procs = (yield* labelledProcesses(Option.some(ns))).filter((p) => p.sessionId === dispatch.sessionId)
        const qemu = procs.find((p) => exeOf(p.pid).includes("qemu"))
        assert.isDefined(qemu, JSON.stringify(procs))
        const memory = scanProcessMemory(qemu!.pid, [...needles, ...visibleNeedles])
        const runDir = join(testDataDir, "run", `vm-${dispatch.sessionId}`)
        const files = filesUnder(runDir)
        const disk = files.filter((f) => !f.endsWith(".sock")).map((f) => ({
          f,
          ...scanFile(f, [...needles, ...visibleNeedles]),
        }))
        const argvEnv = procs.map((p) =>
          scanText(processArgvEnv(p.pid), needles, `argv/env of ${exeOf(p.pid)} ${p.pid}`)
        )

        yield* client.CancelSession({ sessionId: dispatch.sessionId })
        yield* Fiber.join(fiber)
        node.child.kill("SIGTERM")
        yield* exitOf(node.child)

        const out = events.flatMap((e) => (e._tag === "output" ? [e.data] : [])).join("")
        // The session really used every credential (so they were live in the proxy while RAM was read).
        assert.include(out, "api=0", out)
        assert.include(out, "echo=0", out)
        assert.include(out, "clone=hello from the test upstream", out)
        assert.isTrue(events.some((e) => e._tag === "audit"), "audit events were produced and scanned")

        // Positive controls: each scan finds what is really there.
        const inUpstreams = scanText(JSON.stringify(upstreams.received), needles, "upstreams")
        // Raw (x-api-key, the echo bearer) and base64 (git's Basic auth, one alignment of three).
        assert.isTrue(inUpstreams.some((f) => f.encoding === "raw" && f.secret === canaryApi), "upstream: raw")
        assert.isTrue(
          inUpstreams.some((f) => f.encoding.startsWith("base64") && f.secret === canaryGit),
          "upstream: base64",
        )
        const ram = memory.findings.filter((f) => !isVisible(f))
        assert.isAbove(memory.findings.filter(isVisible).length, 0, "the guest-visible marker is in guest RAM")
        assert.isAtLeast(memory.largest, 256 * 1024 * 1024, "the guest RAM mapping was read")
        assert.isAbove(memory.bytes, 256 * 1024 * 1024)
        assert.isTrue(files.some((f) => f.endsWith(".qcow2")), files.join(" "))
        assert.isTrue(
          disk.some((d) => d.findings.some(isVisible)),
          `the guest-visible marker is on the disk overlay: ${files.join(" ")}`,
        )

        // Zero hits anywhere else.
        const hits: Array<Finding> = [
          ...ram,
          ...disk.flatMap((d) => d.findings.filter((f) => !isVisible(f))),
          ...argvEnv.flat(),
          ...scanText(node.log(), needles, "node + proxy output"),
          ...scanText(JSON.stringify(events), needles, "RPC events (output, audit, result)"),
        ]
        console.log(
          `canaries: ${needles.length} patterns over ${(memory.bytes / 2 ** 20).toFixed(0)} MiB of QEMU memory, ` +
            `${disk.reduce((n, d) => n + d.bytes, 0)} bytes in ${disk.length} run-dir files, ` +
            `${node.log().length} log bytes, ${events.length} events: ${hits.length} hits`,
        )
        assert.deepStrictEqual(hits, [])

        assert.isFalse(existsSync(runDir))
        assert.deepStrictEqual(yield* leftovers(ns), { taps: [], tables: [], processes: [] })
      })),
    300_000,
  )
})

const isVisible = (f: Finding) => f.secret === visible
