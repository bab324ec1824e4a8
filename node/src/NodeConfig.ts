import { Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { ProxyUpstream } from "@paws/core"
import * as os from "node:os"

/** Everything `paws node` is configured with (env `PAWS_NODE_*`). */
export interface NodeSettings {
  readonly id: string
  /** Run every `ip`/`nft` command, QEMU and the proxies inside this netns; none = the current one. */
  readonly netns: Option.Option<string>
  readonly token: Redacted.Redacted<string>
  readonly host: string
  readonly port: number
  /** IPv4 pool carved into /30 slots (host = .1, guest = .2). */
  readonly pool: string
  readonly maxVms: number
  /** Per stream (stdout, stderr) cap of what a session keeps and streams. */
  readonly outputCapBytes: number
  readonly resultCapBytes: number
  /** Test-only upstream overrides handed to every proxy (resolver, CA bundle, private upstreams). */
  readonly proxyUpstream: Option.Option<ProxyUpstream>
  /** Call home to this control plane (PAWS_CONTROL_URL, e.g. http://127.0.0.1:4000); none = wait to be dialled. */
  readonly controlUrl: Option.Option<string>
  /** Serve NodeRpcs at /rpc: when PAWS_NODE_PORT is set, or when there is no PAWS_CONTROL_URL to call. */
  readonly serveRpc: boolean
  /** Control silent this long: the link is dropped and with it every live session (control fails them as node_lost). */
  readonly lostAfterMs: number
}

/** One VM per core, and no more than fit in 3/4 of RAM at ~400 MiB each (guest + QEMU + proxy). */
export const defaultMaxVms = (cpus = os.availableParallelism(), memBytes = os.totalmem()): number =>
  Math.max(1, Math.min(cpus, Math.floor((memBytes * 0.75) / (400 * 1024 * 1024))))

const sanitizeId = (s: string): string =>
  s.toLowerCase().replace(/[^a-z0-9._-]/g, "-").replace(/^[^a-z0-9]+/, "").slice(0, 63) || "node"

/** Test-only upstream overrides (JSON); NodeStartChecks warns when they are set. */
export const proxyUpstreamConfig = Config.option(
  Config.schema(Schema.fromJsonString(ProxyUpstream), "PAWS_NODE_PROXY_UPSTREAM"),
)

export const nodeSettingsConfig: Config.Config<NodeSettings> = Config.all({
  id: Config.String("PAWS_NODE_ID").pipe(Config.withDefault(sanitizeId(os.hostname()))),
  netns: Config.option(Config.String("PAWS_NODE_NETNS")),
  token: Config.Redacted("PAWS_NODE_TOKEN"),
  host: Config.String("PAWS_NODE_HOST").pipe(Config.withDefault("0.0.0.0")),
  port: Config.Port("PAWS_NODE_PORT").pipe(Config.withDefault(7711)),
  pool: Config.String("PAWS_NODE_POOL").pipe(Config.withDefault("172.16.0.0/16")),
  maxVms: Config.Int("PAWS_NODE_MAX_VMS").pipe(Config.withDefault(defaultMaxVms())),
  outputCapBytes: Config.Int("PAWS_NODE_OUTPUT_CAP_BYTES").pipe(Config.withDefault(1024 * 1024)),
  resultCapBytes: Config.Int("PAWS_NODE_RESULT_CAP_BYTES").pipe(Config.withDefault(1024 * 1024)),
  proxyUpstream: proxyUpstreamConfig,
  controlUrl: Config.option(Config.String("PAWS_CONTROL_URL")),
  portSet: Config.option(Config.Port("PAWS_NODE_PORT")),
  lostAfterMs: Config.Int("PAWS_NODE_LOST_AFTER_MS").pipe(Config.withDefault(30_000)),
}).pipe(Config.map(({ portSet, ...s }) => ({
  ...s,
  serveRpc: Option.isSome(portSet) || Option.isNone(s.controlUrl),
})))

export class NodeConfig extends Context.Service<NodeConfig, NodeSettings>()("paws/node/NodeConfig") {
  static readonly layer = Layer.effect(NodeConfig, Effect.map(nodeSettingsConfig, NodeConfig.of))
  static readonly layerWith = (overrides: Partial<NodeSettings>): Layer.Layer<NodeConfig> =>
    Layer.succeed(NodeConfig, NodeConfig.of({ ...testDefaults, ...overrides }))
}

const testDefaults: NodeSettings = {
  id: "test-node",
  netns: Option.none(),
  token: Redacted.make("test-token"),
  host: "127.0.0.1",
  port: 0,
  pool: "172.16.0.0/16",
  maxVms: 2,
  outputCapBytes: 1024 * 1024,
  resultCapBytes: 1024 * 1024,
  proxyUpstream: Option.none(),
  controlUrl: Option.none(),
  serveRpc: true,
  lostAfterMs: 30_000,
}
