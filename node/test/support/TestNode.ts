import { Context, Effect, Layer, Option } from "effect"
import { ImageBuilder } from "../../src/image/ImageBuilder.ts"
import { labelledProcesses } from "../../src/network/Reconciler.ts"
import { NodeServices } from "../../src/main.ts"
import { upstreamsIn } from "./CanaryWorld.ts"
import { makeNetns } from "./Netns.ts"
import { linksIn, tablesIn } from "./TestNet.ts"
import { testConfig, testImageLayer } from "./TestImage.ts"

/** Names the test upstream answers (through the proxy's resolver override). */
export const upstreamNames = ["api.test", "git.test", "echo.test"] as const

export interface Received {
  readonly host: string
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string | Array<string> | undefined>
}

/** The test world around a node: its netns and the HTTPS upstreams inside it. */
export class TestWorld extends Context.Service<TestWorld, {
  readonly netns: string
  readonly upstreamCaPem: string
  readonly received: Array<Received>
  readonly gitAuth: string
}>()("paws/test/TestWorld") {}

/**
 * A complete node (NodeServices) in a fresh netns, with HTTPS upstreams inside it that the
 * proxies reach through their resolver override. `extra` adds PAWS_* config.
 */
export const testNodeLayer = (extra: Record<string, string> = {}) =>
  Layer.unwrap(Effect.gen(function* () {
    const netns = yield* makeNetns("node")
    const gitAuth = `Basic ${Buffer.from(`x-access-token:ghs_${crypto.randomUUID()}`).toString("base64")}`
    const upstreams = yield* upstreamsIn(netns, gitAuth)
    const upstream = {
      caBundlePem: upstreams.caPem,
      resolve: Object.fromEntries(upstreamNames.map((n) => [n, { address: "127.0.0.1", port: upstreams.port }])),
      allowPrivateUpstreams: true,
    }
    const config = testConfig({
      PAWS_NODE_NETNS: netns,
      PAWS_NODE_TOKEN: "test-node-token",
      PAWS_NODE_POOL: "172.16.0.0/24",
      PAWS_NODE_MAX_VMS: "2",
      PAWS_NODE_PROXY_UPSTREAM: JSON.stringify(upstream),
      PAWS_NODE_DEFAULT_SNAPSHOT: "0", // deterministic: no background build at start
      ...extra,
    })
    // The guest image is content-cached in the shared test data dir; build it if missing.
    yield* ImageBuilder.use((b) => b.build()).pipe(Effect.provide(testImageLayer()), Effect.orDie)
    return NodeServices.pipe(
      Layer.provideMerge(
        Layer.succeed(
          TestWorld,
          TestWorld.of({ netns, upstreamCaPem: upstreams.caPem, received: upstreams.received, gitAuth }),
        ),
      ),
      Layer.provide(config),
    )
  }))

/** What a finished test must not leave behind in the node's netns. */
export const leftovers = (netns: string) =>
  Effect.gen(function* () {
    const taps = (yield* linksIn(netns)).filter((l) => l.startsWith("pw"))
    const tables = (yield* tablesIn(netns)).filter((t) => t.startsWith("paws_"))
    const processes = yield* labelledProcesses(Option.some(netns))
    return { taps, tables, processes: processes.map((p) => p.pid) }
  })
