import { Config, Context, Effect, Layer } from "effect"
import { flagSetting, intSetting, optionalSetting, readSettings } from "@paws/core/Settings"

/** Settings of daemons and their triggers (part of `paws control`'s environment). */
export const daemonSettings = {
  hookMaxBytes: intSetting("PAWS_HOOK_MAX_BYTES", 256 * 1024, "largest webhook/GitHub delivery body (413 above)", {
    max: 1024 * 1024,
  }),
  hookReplayWindowSeconds: intSetting(
    "PAWS_HOOK_REPLAY_WINDOW_S",
    300,
    "a signed webhook whose X-Paws-Timestamp is further than this from now is refused",
    { max: 86_400 },
  ),
  cronPollMs: intSetting("PAWS_CRON_POLL_MS", 1000, "how often the replica holding the lease checks for due ticks", {
    min: 50,
    max: 60_000,
  }),
  leaseMs: intSetting("PAWS_DAEMON_LEASE_MS", 10_000, "cron/watch lease length; another replica takes over after it", {
    min: 200,
    max: 600_000,
  }),
  minWatchIntervalSeconds: intSetting("PAWS_WATCH_MIN_INTERVAL_S", 30, "smallest watch intervalSeconds", {
    max: 86_400,
  }),
  watchAllowLoopback: flagSetting(
    "PAWS_TEST_WATCH_ALLOW_LOOPBACK",
    false,
    "TEST ONLY: let watches poll loopback addresses (a test's own HTTPS server); never set in production",
  ),
  watchCaFile: optionalSetting(
    "PAWS_TEST_WATCH_CA_FILE",
    "the system's trust store",
    "TEST ONLY: PEM file of the CA that watch targets' certificates must chain to",
  ),
}

export class DaemonConfig extends Context.Service<DaemonConfig, {
  readonly hookMaxBytes: number
  readonly hookReplayWindowSeconds: number
  readonly cronPollMs: number
  readonly leaseMs: number
  readonly minWatchIntervalSeconds: number
  readonly watchAllowLoopback: boolean
  readonly watchCaFile: string | undefined
}>()("paws/control/DaemonConfig") {
  static readonly layer = Layer.effect(
    DaemonConfig,
    Effect.map(readSettings(daemonSettings) as Config.Config<DaemonConfig["Service"]>, (c) => DaemonConfig.of(c)),
  )
}
