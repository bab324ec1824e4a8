import { Config, Context, Effect, Layer, Option, type Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { defaultSessionLimits, hardLimits, nodeMaxConcurrentLimit, type SessionLimits } from "@paws/core"
import {
  customSetting,
  flagSetting,
  intSetting,
  optionSetting,
  readSettings,
  secretSetting,
  textSetting,
} from "@paws/core/Settings"
import { memorySettings } from "./MemorySettings.ts"
import { daemonSettings } from "./daemons/DaemonConfig.ts"
import { consoleSettings } from "./console/ConsoleConfig.ts"
import { oidcSettings } from "./oidc/OidcConfig.ts"
import { exposureListenerSettings } from "./exposure/ExposureListenerConfig.ts"

/** Every setting of `paws control`, read from the environment; `--help` and the README list this table. */
export const controlSettings = {
  host: textSetting("PAWS_HOST", "127.0.0.1", "address the HTTP API listens on"),
  port: intSetting("PAWS_PORT", 4000, "port the HTTP API listens on (0 = any free port)", { min: 0, max: 65535 }),
  dataDir: textSetting(
    "PAWS_DATA_DIR",
    ".paws",
    "directory for the embedded database, the vault key file and the first admin key file (mode 0700)",
  ),
  databaseUrl: secretSetting(
    "DATABASE_URL",
    "embedded PGlite in PAWS_DATA_DIR",
    "PostgreSQL URL (postgres://user:pass@host:port/db)",
  ),
  dbMaxConnections: intSetting("PAWS_DB_MAX_CONNECTIONS", 10, "connection pool size for DATABASE_URL", { max: 1000 }),
  vaultKey: secretSetting(
    "PAWS_VAULT_KEY",
    "PAWS_DATA_DIR/vault.key, created 0600 on first start",
    "32-byte AES-256-GCM key for credentials at rest, base64 or hex",
  ),
  maxBodyBytes: intSetting("PAWS_MAX_BODY_BYTES", 2 * 1024 * 1024, "largest accepted request body (413 above)", {
    max: 64 * 1024 * 1024,
  }),
  logLevel: customSetting(
    "PAWS_LOG_LEVEL",
    "Info",
    "Trace, Debug, Info, Warn, Error or None",
    Config.LogLevel("PAWS_LOG_LEVEL").pipe(Config.withDefault("Info" as const)),
  ),
  logRequests: flagSetting("PAWS_LOG_REQUESTS", false, "log one line per HTTP request"),
  replicaId: optionSetting(
    "PAWS_REPLICA_ID",
    "HOSTNAME:PAWS_PORT (a random suffix when the port is 0)",
    "this control replica's id: sessions it dispatches are its own until its lease lapses",
  ),
  replicaLeaseMs: intSetting(
    "PAWS_REPLICA_LEASE_MS",
    30_000,
    "a replica silent this long (in the database) is gone: another re-queues its claimed sessions and fails its running ones",
    { min: 1000, max: 3_600_000 },
  ),
  adoptGraceMs: intSetting(
    "PAWS_ADOPT_GRACE_MS",
    25_000,
    "a gone replica's sessions wait this long for their node to call home to a live replica, which takes them over; then they are re-queued (starting) or failed (running)",
    { min: 0, max: 3_600_000 },
  ),
  publicDomain: textSetting(
    "PAWS_PUBLIC_DOMAIN",
    "",
    "exposed ports also get their own origin, https://{port}-{id}.DOMAIN (wildcard DNS and TLS in front of control)",
  ),
  dispatchIntervalMs: intSetting(
    "PAWS_DISPATCH_INTERVAL_MS",
    1000,
    "how often the dispatcher re-reads the queue when nothing wakes it",
    { max: 60_000 },
  ),
  timeoutGraceMs: intSetting(
    "PAWS_TIMEOUT_GRACE_MS",
    60_000,
    "how long past a session's timeoutMs control waits for its node before marking it timeout",
    { max: 3_600_000 },
  ),
  approvalSweepMs: intSetting(
    "PAWS_APPROVAL_SWEEP_MS",
    5_000,
    "how often control denies sessions whose approval expired (each replica sweeps; any one suffices)",
    { min: 10, max: 600_000 },
  ),
  heartbeatMs: intSetting("PAWS_NODE_HEARTBEAT_MS", 10_000, "how often control pings nodes and asks their status", {
    min: 10,
    max: 3_600_000,
  }),
  lostAfterMs: intSetting(
    "PAWS_NODE_LOST_AFTER_MS",
    30_000,
    "a node silent this long is lost: running sessions fail (node_lost), claimed ones re-queue",
    { min: 10, max: 3_600_000 },
  ),
  lostRetentionMs: intSetting(
    "PAWS_NODE_LOST_RETENTION_MS",
    86_400_000,
    "how long a lost node stays listed (status lost, lastSeenAt) unless it returns or its token is revoked",
    { min: 0, max: 30 * 86_400_000 },
  ),
  nodeMaxConcurrent: intSetting(
    "PAWS_NODE_MAX_CONCURRENT",
    256,
    "most sessions control runs on one node at once, whatever the node reports " +
      "(a node token's maxConcurrent replaces it for that node)",
    { max: nodeMaxConcurrentLimit },
  ),
  staticNodes: textSetting(
    "PAWS_NODES",
    "",
    "static mode: comma-separated ws://host:port/rpc URLs of nodes that control dials",
  ),
  staticNodesToken: secretSetting("PAWS_NODES_TOKEN", "none", "bearer token control sends to PAWS_NODES"),
  kubernetesNodeSelector: textSetting(
    "PAWS_KUBERNETES_NODE_PODS",
    "",
    "Kubernetes mode: label selector of node pods that control watches and dials (PAWS_NODES_TOKEN as bearer)",
  ),
  kubernetesNamespace: textSetting(
    "PAWS_KUBERNETES_NAMESPACE",
    "",
    "namespace of the node pods (default: control's own)",
  ),
  kubernetesApi: textSetting(
    "PAWS_KUBERNETES_API",
    "",
    "Kubernetes API URL (default: https://KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT)",
  ),
  kubernetesServiceAccountDir: textSetting(
    "PAWS_KUBERNETES_SERVICE_ACCOUNT_DIR",
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "where the pod's service-account token, ca.crt and namespace are",
  ),
  kubernetesNodePort: intSetting(
    "PAWS_KUBERNETES_NODE_PORT",
    7711,
    "RPC port of node pods that declare no container port named rpc",
    { min: 1, max: 65535 },
  ),
  maxTimeoutMs: intSetting(
    "PAWS_MAX_TIMEOUT_MS",
    defaultSessionLimits.maxTimeoutMs,
    `largest session timeoutMs (at most ${hardLimits.timeoutMs})`,
    { max: hardLimits.timeoutMs },
  ),
  defaultTimeoutMs: intSetting(
    "PAWS_DEFAULT_TIMEOUT_MS",
    defaultSessionLimits.defaultTimeoutMs,
    "timeoutMs of sessions that set none",
    { max: hardLimits.timeoutMs },
  ),
  maxVcpus: intSetting("PAWS_MAX_VCPUS", defaultSessionLimits.maxVcpus, "largest resources.vcpus", {
    max: hardLimits.vcpus,
  }),
  maxMemoryMB: intSetting("PAWS_MAX_MEMORY_MB", defaultSessionLimits.maxMemoryMB, "largest resources.memoryMB", {
    max: hardLimits.memoryMB,
  }),
  maxScriptBytes: intSetting(
    "PAWS_MAX_SCRIPT_BYTES",
    defaultSessionLimits.maxScriptBytes,
    `largest workload.script in UTF-8 bytes (at most ${hardLimits.scriptBytes})`,
    { max: hardLimits.scriptBytes },
  ),
  maxAuditRows: intSetting(
    "PAWS_MAX_AUDIT_ROWS",
    10_000,
    "proxy audit events stored per session; the rest are counted in one final audit_dropped row",
    { max: 10_000_000 },
  ),
  auditRetentionMs: intSetting(
    "PAWS_AUDIT_RETENTION_MS",
    0,
    "audit rows older than this are pruned, leaving a signed checkpoint (0 = keep forever)",
    { min: 0, max: 100 * 365 * 86_400_000 },
  ),
  auditCheckpointIntervalMs: intSetting(
    "PAWS_AUDIT_CHECKPOINT_INTERVAL_MS",
    60_000,
    "how often (and once at start) control signs the audit chain's head, so a rewritten or truncated chain " +
      "fails verify, and prunes rows past PAWS_AUDIT_RETENTION_MS",
    { min: 100, max: 30 * 86_400_000 },
  ),
  defaultVcpus: intSetting(
    "PAWS_DEFAULT_VCPUS",
    defaultSessionLimits.defaultVcpus,
    "vCPUs of sessions that set no resources",
    {
      max: hardLimits.vcpus,
    },
  ),
  defaultMemoryMB: intSetting(
    "PAWS_DEFAULT_MEMORY_MB",
    defaultSessionLimits.defaultMemoryMB,
    "memory of sessions that set no resources",
    { max: hardLimits.memoryMB },
  ),
  ...memorySettings,
  // Daemons' settings live beside them (DaemonConfig reads them); here so that --help lists them.
  ...daemonSettings,
  ...consoleSettings,
  ...oidcSettings,
  ...exposureListenerSettings,
}

export interface ControlSettings {
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly databaseUrl: Redacted.Redacted | undefined
  readonly dbMaxConnections: number
  readonly vaultKey: Redacted.Redacted | undefined
  readonly maxBodyBytes: number
  readonly logRequests: boolean
  /** Lowercase, no leading dot; undefined: exposed ports have the path form only. */
  readonly publicDomain: string | undefined
  readonly dispatchIntervalMs: number
  readonly timeoutGraceMs: number
  readonly approvalSweepMs: number
  readonly maxAuditRows: number
  readonly replicaId: string
  readonly replicaLeaseMs: number
  readonly adoptGraceMs: number
  readonly auditRetentionMs: number
  readonly auditCheckpointIntervalMs: number
  readonly limits: SessionLimits
}

export class ControlConfig extends Context.Service<ControlConfig, ControlSettings>()("paws/control/ControlConfig") {
  static readonly layer = Layer.effect(
    ControlConfig,
    Effect.gen(function* () {
      const c = yield* readSettings(controlSettings)
      return ControlConfig.of({
        host: c.host,
        port: c.port,
        dataDir: c.dataDir,
        databaseUrl: c.databaseUrl,
        dbMaxConnections: c.dbMaxConnections,
        vaultKey: c.vaultKey,
        maxBodyBytes: c.maxBodyBytes,
        logRequests: c.logRequests,
        publicDomain: c.publicDomain.trim() === "" ? undefined : c.publicDomain.trim().toLowerCase().replace(/^\./, ""),
        dispatchIntervalMs: c.dispatchIntervalMs,
        timeoutGraceMs: c.timeoutGraceMs,
        approvalSweepMs: c.approvalSweepMs,
        maxAuditRows: c.maxAuditRows,
        replicaId: Option.getOrElse(
          c.replicaId,
          () => `${hostname()}:${c.port === 0 ? `0-${randomUUID().slice(0, 8)}` : c.port}`,
        ),
        replicaLeaseMs: c.replicaLeaseMs,
        adoptGraceMs: c.adoptGraceMs,
        auditRetentionMs: c.auditRetentionMs,
        auditCheckpointIntervalMs: c.auditCheckpointIntervalMs,
        limits: {
          maxTimeoutMs: c.maxTimeoutMs,
          defaultTimeoutMs: Math.min(c.defaultTimeoutMs, c.maxTimeoutMs),
          maxVcpus: c.maxVcpus,
          maxMemoryMB: c.maxMemoryMB,
          maxScriptBytes: c.maxScriptBytes,
          defaultVcpus: Math.min(c.defaultVcpus, c.maxVcpus),
          defaultMemoryMB: Math.min(c.defaultMemoryMB, c.maxMemoryMB),
        },
      })
    }),
  )
}
