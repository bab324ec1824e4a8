import { Config, Context, Duration, Effect, Layer, Schema } from "effect"
import { customSetting, readSettings } from "@paws/core/Settings"

const AtLeastASecond = Schema.DurationFromString.pipe(
  Schema.check(
    Schema.makeFilter((d: Duration.Duration) =>
      (Duration.isFinite(d) && Duration.toMillis(d) >= 1000) || "must be a duration of at least 1 second (`12 hours`)"
    ),
  ),
)

const HttpUrl = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^https?:\/\/[^/\s]+(\/\S*)?$/, { message: "must be an http:// or https:// URL" })),
)

/** Settings of the console's sign-in (part of `paws control`'s environment; ControlConfig lists them). */
export const consoleSettings = {
  sessionTtl: customSetting(
    "PAWS_CONSOLE_SESSION_TTL",
    "12 hours",
    "how long a console sign-in (the paws_session cookie) lasts, e.g. `12 hours`, `30 minutes`",
    Config.schema(AtLeastASecond, "PAWS_CONSOLE_SESSION_TTL").pipe(Config.withDefault(Duration.hours(12))),
  ),
  publicUrl: customSetting(
    "PAWS_PUBLIC_URL",
    "(unset: the URL of each request)",
    "the URL browsers reach control at (https://paws.example.com): https marks the console cookie Secure, " +
      "and the OIDC redirect URL is derived from it",
    Config.schema(HttpUrl, "PAWS_PUBLIC_URL").pipe(Config.option),
  ),
}

export interface ConsoleSettings {
  readonly sessionTtl: Duration.Duration
  /** Without a trailing slash. */
  readonly publicUrl: string | undefined
}

export class ConsoleConfig extends Context.Service<ConsoleConfig, ConsoleSettings>()("paws/control/ConsoleConfig") {
  static readonly layer = Layer.effect(
    ConsoleConfig,
    Effect.map(readSettings(consoleSettings), (c) =>
      ConsoleConfig.of({
        sessionTtl: c.sessionTtl,
        publicUrl: c.publicUrl._tag === "Some" ? c.publicUrl.value.replace(/\/+$/, "") : undefined,
      })),
  )
}
