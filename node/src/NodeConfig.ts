import { Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { customSetting, flagSetting, intSetting, optionSetting, secretSetting, textSetting } from "@paws/core/Settings"
import { parseLabels, ProxyUpstream } from "@paws/core"
import * as os from "node:os"
import { availableMemoryBytes, fixedCapacity, planCapacity, readVmCost } from "./NodeCapacity.ts"

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
  /** Sessions started at once (place → restore → running); the rest wait their turn. */
  readonly maxStarting: number
  /** Why `maxVms` is what it is (the setting, or memory / measured per-VM cost), for `paws nodes`. */
  readonly capacityBasis: string
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
  /** A session whose control replica went away keeps running this long for another to take it over. */
  readonly adoptGraceMs: number
  /** Auto-pause a live session after this many seconds without exec, file, shell or port traffic; 0 = never. */
  readonly idlePauseSeconds: number
  /** Reported to control for placement: sessions with a `nodeSelector` run only where every label matches. */
  readonly labels: Readonly<Record<string, string>>
}

const sanitizeId = (s: string): string =>
  s.toLowerCase().replace(/[^a-z0-9._-]/g, "-").replace(/^[^a-z0-9]+/, "").slice(0, 63) || "node"

/**
 * Every setting of `paws node` (and of the image and snapshot tools it shares), read from the
 * environment. Each is defined here once; services read `nodeSettings.X.config`, and `--help` and
 * the README list this table.
 */
export const nodeSettings = {
  id: textSetting("PAWS_NODE_ID", sanitizeId(os.hostname()), "this node's id (a node token is bound to it)"),
  token: secretSetting("PAWS_NODE_TOKEN", "refused at start", "node token from `paws nodes token create` (required)"),
  controlUrl: optionSetting(
    "PAWS_CONTROL_URL",
    "wait to be dialled",
    "call home to this control plane (http(s)://host:port; ws:// off loopback warns)",
  ),
  host: textSetting("PAWS_NODE_HOST", "0.0.0.0", "address the node's RPC listens on when it is dialled"),
  port: customSetting(
    "PAWS_NODE_PORT",
    "7711, served only without PAWS_CONTROL_URL",
    "port of the node's RPC (/rpc); setting it serves RPC even when calling home",
    Config.option(Config.Port("PAWS_NODE_PORT")),
  ),
  labels: customSetting(
    "PAWS_NODE_LABELS",
    "(none)",
    "labels for placement, k=v,k2=v2 (sessions' nodeSelector picks nodes by them)",
    Config.schema(
      Schema.String.pipe(Schema.check(Schema.makeFilter((s: string) => {
        const parsed = parseLabels(s)
        return "problem" in parsed ? parsed.problem : true
      }))),
      "PAWS_NODE_LABELS",
    ).pipe(
      Config.withDefault(""),
      Config.map((s) => {
        const parsed = parseLabels(s)
        return "labels" in parsed ? parsed.labels : {}
      }),
    ),
  ),
  netns: optionSetting("PAWS_NODE_NETNS", "the current one", "network namespace for TAPs, firewall, QEMU and proxies"),
  pool: textSetting("PAWS_NODE_POOL", "172.16.0.0/16", "IPv4 range carved into one /30 per VM (host .1, guest .2)"),
  maxVms: customSetting(
    "PAWS_NODE_MAX_VMS",
    "as many as fit in available memory at the per-VM cost measured here (NodeCapacity.ts)",
    "most VMs at once",
    Config.option(Config.schema(Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1))), "PAWS_NODE_MAX_VMS")),
  ),
  maxStarting: customSetting(
    "PAWS_NODE_MAX_STARTING",
    "2 per CPU core",
    "sessions started at once (restore → running); the others wait their turn",
    Config.option(
      Config.schema(
        Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 1024 }))),
        "PAWS_NODE_MAX_STARTING",
      ),
    ),
  ),
  outputCapBytes: intSetting("PAWS_NODE_OUTPUT_CAP_BYTES", 1024 * 1024, "stdout and stderr kept per session, each"),
  resultCapBytes: intSetting("PAWS_NODE_RESULT_CAP_BYTES", 1024 * 1024, "largest /output/result.json read"),
  lostAfterMs: intSetting(
    "PAWS_NODE_LOST_AFTER_MS",
    30_000,
    "control silent this long: the link drops and its sessions stop",
  ),
  adoptGraceMs: intSetting(
    "PAWS_NODE_ADOPT_GRACE_MS",
    15_000,
    "a session whose control replica went away keeps running this long for another replica to take it over",
    { min: 0, max: 600_000 },
  ),
  idlePauseSeconds: intSetting(
    "PAWS_NODE_IDLE_PAUSE_SECONDS",
    0,
    "pause a live session after this many seconds without exec, file, shell or port traffic (0 = never)",
    { min: 0, max: 604_800 },
  ),
  proxyUpstream: customSetting(
    "PAWS_NODE_PROXY_UPSTREAM",
    "(unset)",
    "TEST ONLY: JSON upstream overrides for every proxy (resolver, CA bundle, private upstreams); warns at start",
    Config.option(Config.schema(Schema.fromJsonString(ProxyUpstream), "PAWS_NODE_PROXY_UPSTREAM")),
  ),
  warmProxies: intSetting("PAWS_NODE_WARM_POOL", 2, "proxies kept started, waiting for a session (0 = none)", {
    min: 0,
    max: 64,
  }),
  warmVms: intSetting(
    "PAWS_NODE_VM_POOL",
    0,
    "snapshot clones kept loaded and paused for the next sessions (0 = off)",
    { min: 0, max: 256 },
  ),
  warmVmSnapshot: textSetting("PAWS_NODE_VM_POOL_SNAPSHOT", "default", "which snapshot PAWS_NODE_VM_POOL clones"),
  defaultSnapshot: flagSetting(
    "PAWS_NODE_DEFAULT_SNAPSHOT",
    true,
    "build the PAWS_NODE_SNAPSHOTS at start (sessions restore them instead of cold-booting); false: none",
  ),
  tcgCacheMiB: intSetting(
    "PAWS_NODE_TCG_CACHE_MIB",
    0,
    "TCG only (no KVM): translated-code cache per VM in MiB; small saves memory per idle VM, costs CPU in busy ones (0 = QEMU's own)",
    { min: 0, max: 1024 },
  ),
  keptSnapshots: textSetting(
    "PAWS_NODE_SNAPSHOTS",
    "default",
    "snapshots kept built, NAME[:MEMORY_MB],… (e.g. default,claude-agent:2048); missing images are built first",
  ),
  dataDir: textSetting("PAWS_DATA_DIR", ".paws", "where images, snapshots, keys and run dirs live"),
  imageDir: optionSetting("PAWS_IMAGE_DIR", "PAWS_DATA_DIR/images", "guest images"),
  snapshotDir: optionSetting("PAWS_SNAPSHOT_DIR", "PAWS_DATA_DIR/snapshots", "snapshots"),
  runDir: optionSetting("PAWS_RUN_DIR", "PAWS_DATA_DIR/run", "per-VM runtime dirs (overlay, sockets, logs)"),
  sshKey: optionSetting("PAWS_NODE_SSH_KEY", "PAWS_DATA_DIR/keys/node_ed25519, made at first start", "node SSH key"),
  accel: customSetting(
    "PAWS_ACCEL",
    "auto",
    "kvm, tcg or auto (KVM when a probe boot under it works)",
    Config.Literals(["kvm", "tcg", "auto"], "PAWS_ACCEL").pipe(Config.withDefault("auto" as const)),
  ),
}

/** Test-only upstream overrides (JSON); NodeStartChecks warns when they are set. */
export const proxyUpstreamConfig = nodeSettings.proxyUpstream.config

export const nodeSettingsConfig: Config.Config<NodeSettings> = Config.all({
  id: nodeSettings.id.config,
  netns: nodeSettings.netns.config,
  token: nodeSettings.token.config.pipe(Config.map((t) => t ?? Redacted.make(""))),
  host: nodeSettings.host.config,
  port: nodeSettings.port.config,
  pool: nodeSettings.pool.config,
  maxVms: nodeSettings.maxVms.config,
  maxStarting: nodeSettings.maxStarting.config,
  dataDir: nodeSettings.dataDir.config,
  outputCapBytes: nodeSettings.outputCapBytes.config,
  resultCapBytes: nodeSettings.resultCapBytes.config,
  proxyUpstream: proxyUpstreamConfig,
  controlUrl: nodeSettings.controlUrl.config,
  lostAfterMs: nodeSettings.lostAfterMs.config,
  adoptGraceMs: nodeSettings.adoptGraceMs.config,
  idlePauseSeconds: nodeSettings.idlePauseSeconds.config,
  labels: nodeSettings.labels.config,
}).pipe(Config.map(({ port, maxVms, maxStarting, dataDir, ...s }) => {
  const capacity = Option.isSome(maxVms)
    ? fixedCapacity(maxVms.value)
    : planCapacity(availableMemoryBytes(), readVmCost(dataDir))
  return {
    ...s,
    maxVms: capacity.maxVms,
    capacityBasis: capacity.basis,
    maxStarting: Option.getOrElse(maxStarting, () => Math.max(2, 2 * os.availableParallelism())),
    port: Option.getOrElse(port, () => 7711),
    serveRpc: Option.isSome(port) || Option.isNone(s.controlUrl),
  }
}))

export class NodeConfig extends Context.Service<NodeConfig, NodeSettings>()("paws/node/NodeConfig") {
  static readonly layer = Layer.effect(NodeConfig, Effect.map(nodeSettingsConfig, NodeConfig.of))
  static readonly layerWith = (overrides: Partial<NodeSettings>): Layer.Layer<NodeConfig> =>
    Layer.succeed(
      NodeConfig,
      NodeConfig.of({ ...testDefaults, capacityBasis: fixedCapacity(overrides.maxVms ?? 2).basis, ...overrides }),
    )
}

const testDefaults: NodeSettings = {
  id: "test-node",
  netns: Option.none(),
  token: Redacted.make("test-token"),
  host: "127.0.0.1",
  port: 0,
  pool: "172.16.0.0/16",
  maxVms: 2,
  maxStarting: 4,
  capacityBasis: "PAWS_NODE_MAX_VMS=2",
  outputCapBytes: 1024 * 1024,
  resultCapBytes: 1024 * 1024,
  proxyUpstream: Option.none(),
  controlUrl: Option.none(),
  serveRpc: true,
  lostAfterMs: 30_000,
  // In-process tests: a session whose stream goes away stops at once (as before adoption).
  adoptGraceMs: 0,
  idlePauseSeconds: 0,
  labels: {},
}
