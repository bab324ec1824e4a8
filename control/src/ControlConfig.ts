import { Config, Context, Effect, Layer, type Redacted, Schema } from "effect"
import { defaultSessionLimits, hardLimits, type SessionLimits } from "@paws/core"

/** Every setting of `paws control`, for `--help` and the README. All come from the environment. */
export const controlConfigKeys: ReadonlyArray<
  { readonly name: string; readonly default: string; readonly description: string }
> = [
  { name: "PAWS_HOST", default: "127.0.0.1", description: "address the HTTP API listens on" },
  { name: "PAWS_PORT", default: "4000", description: "port the HTTP API listens on (0 = any free port)" },
  {
    name: "PAWS_DATA_DIR",
    default: ".paws",
    description: "directory for the embedded database, the vault key file and the first admin key file " +
      "(control refuses to start when it or vault.key is reachable by group or other users)",
  },
  {
    name: "DATABASE_URL",
    default: "(unset: embedded PGlite in PAWS_DATA_DIR)",
    description: "PostgreSQL URL (postgres://user:pass@host:port/db); unset = embedded database",
  },
  { name: "PAWS_DB_MAX_CONNECTIONS", default: "10", description: "connection pool size for DATABASE_URL" },
  {
    name: "PAWS_VAULT_KEY",
    default: "(unset: PAWS_DATA_DIR/vault.key, created 0600 on first start)",
    description: "32-byte AES-256-GCM key for credentials at rest, base64 or hex",
  },
  { name: "PAWS_MAX_BODY_BYTES", default: "2097152", description: "largest accepted request body (413 above)" },
  { name: "PAWS_LOG_LEVEL", default: "Info", description: "Trace, Debug, Info, Warn, Error or None" },
  { name: "PAWS_LOG_REQUESTS", default: "false", description: "log one line per HTTP request" },
  {
    name: "PAWS_DISPATCH_INTERVAL_MS",
    default: "1000",
    description: "how often the dispatcher re-reads the queue when nothing wakes it",
  },
  {
    name: "PAWS_TIMEOUT_GRACE_MS",
    default: "60000",
    description: "how long past a session's timeoutMs control waits for its node before marking it timeout",
  },
  {
    name: "PAWS_NODE_HEARTBEAT_MS",
    default: "10000",
    description: "how often control pings nodes and asks their status",
  },
  {
    name: "PAWS_NODE_LOST_AFTER_MS",
    default: "30000",
    description: "a node silent this long is lost: running sessions fail (node_lost), claimed ones re-queue",
  },
  {
    name: "PAWS_NODE_LOST_RETENTION_MS",
    default: "86400000",
    description:
      "how long a lost node stays listed (status lost, lastSeenAt) unless it returns or its token is revoked",
  },
  {
    name: "PAWS_NODE_MAX_CONCURRENT",
    default: "64",
    description: "most sessions control runs at once on one node, whatever the node reports " +
      "(a node token's maxConcurrent replaces it for that node)",
  },
  {
    name: "PAWS_NODES",
    default: "(unset)",
    description: "static mode: comma-separated ws://host:port/rpc URLs of nodes that control dials",
  },
  { name: "PAWS_NODES_TOKEN", default: "(unset)", description: "bearer token control sends to PAWS_NODES" },
  {
    name: "PAWS_MAX_TIMEOUT_MS",
    default: String(defaultSessionLimits.maxTimeoutMs),
    description: `largest session timeoutMs (at most ${hardLimits.timeoutMs})`,
  },
  {
    name: "PAWS_DEFAULT_TIMEOUT_MS",
    default: String(defaultSessionLimits.defaultTimeoutMs),
    description: "timeoutMs of sessions that set none",
  },
  { name: "PAWS_MAX_VCPUS", default: String(defaultSessionLimits.maxVcpus), description: "largest resources.vcpus" },
  {
    name: "PAWS_MAX_MEMORY_MB",
    default: String(defaultSessionLimits.maxMemoryMB),
    description: "largest resources.memoryMB",
  },
  {
    name: "PAWS_MAX_SCRIPT_BYTES",
    default: String(defaultSessionLimits.maxScriptBytes),
    description: `largest workload.script in UTF-8 bytes (at most ${hardLimits.scriptBytes})`,
  },
  {
    name: "PAWS_MAX_AUDIT_ROWS",
    default: "10000",
    description: "proxy audit events stored per session; the rest are counted in one final audit_dropped row",
  },
  {
    name: "PAWS_DEFAULT_VCPUS",
    default: String(defaultSessionLimits.defaultVcpus),
    description: "vCPUs of sessions that set no resources",
  },
  {
    name: "PAWS_DEFAULT_MEMORY_MB",
    default: String(defaultSessionLimits.defaultMemoryMB),
    description: "memory of sessions that set no resources",
  },
]

export interface ControlSettings {
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly databaseUrl: Redacted.Redacted | undefined
  readonly dbMaxConnections: number
  readonly vaultKey: Redacted.Redacted | undefined
  readonly maxBodyBytes: number
  readonly logRequests: boolean
  readonly dispatchIntervalMs: number
  readonly timeoutGraceMs: number
  readonly maxAuditRows: number
  readonly limits: SessionLimits
}

/** An integer setting in 1..max; out-of-range values fail at start with the name of the variable. */
const positive = (name: string, max: number, fallback: number) =>
  Config.schema(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: max }))), name).pipe(
    Config.withDefault(fallback),
  )

const settings = Config.all({
  host: Config.String("PAWS_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.schema(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))), "PAWS_PORT")
    .pipe(Config.withDefault(4000)),
  dataDir: Config.String("PAWS_DATA_DIR").pipe(Config.withDefault(".paws")),
  databaseUrl: Config.Redacted("DATABASE_URL").pipe(Config.option),
  dbMaxConnections: positive("PAWS_DB_MAX_CONNECTIONS", 1000, 10),
  vaultKey: Config.Redacted("PAWS_VAULT_KEY").pipe(Config.option),
  maxBodyBytes: positive("PAWS_MAX_BODY_BYTES", 64 * 1024 * 1024, 2 * 1024 * 1024),
  logRequests: Config.Boolean("PAWS_LOG_REQUESTS").pipe(Config.withDefault(false)),
  dispatchIntervalMs: positive("PAWS_DISPATCH_INTERVAL_MS", 60_000, 1000),
  timeoutGraceMs: positive("PAWS_TIMEOUT_GRACE_MS", 3_600_000, 60_000),
  maxAuditRows: positive("PAWS_MAX_AUDIT_ROWS", 10_000_000, 10_000),
  maxTimeoutMs: positive("PAWS_MAX_TIMEOUT_MS", hardLimits.timeoutMs, defaultSessionLimits.maxTimeoutMs),
  defaultTimeoutMs: positive("PAWS_DEFAULT_TIMEOUT_MS", hardLimits.timeoutMs, defaultSessionLimits.defaultTimeoutMs),
  maxVcpus: positive("PAWS_MAX_VCPUS", hardLimits.vcpus, defaultSessionLimits.maxVcpus),
  maxMemoryMB: positive("PAWS_MAX_MEMORY_MB", hardLimits.memoryMB, defaultSessionLimits.maxMemoryMB),
  maxScriptBytes: positive("PAWS_MAX_SCRIPT_BYTES", hardLimits.scriptBytes, defaultSessionLimits.maxScriptBytes),
  defaultVcpus: positive("PAWS_DEFAULT_VCPUS", hardLimits.vcpus, defaultSessionLimits.defaultVcpus),
  defaultMemoryMB: positive("PAWS_DEFAULT_MEMORY_MB", hardLimits.memoryMB, defaultSessionLimits.defaultMemoryMB),
})

export class ControlConfig extends Context.Service<ControlConfig, ControlSettings>()("paws/control/ControlConfig") {
  static readonly layer = Layer.effect(
    ControlConfig,
    Effect.gen(function* () {
      const c = yield* settings
      return ControlConfig.of({
        host: c.host,
        port: c.port,
        dataDir: c.dataDir,
        databaseUrl: c.databaseUrl._tag === "Some" ? c.databaseUrl.value : undefined,
        dbMaxConnections: c.dbMaxConnections,
        vaultKey: c.vaultKey._tag === "Some" ? c.vaultKey.value : undefined,
        maxBodyBytes: c.maxBodyBytes,
        logRequests: c.logRequests,
        dispatchIntervalMs: c.dispatchIntervalMs,
        timeoutGraceMs: c.timeoutGraceMs,
        maxAuditRows: c.maxAuditRows,
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
