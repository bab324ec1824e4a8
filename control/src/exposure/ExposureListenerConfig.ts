import { Config, Schema } from "effect"
import { customSetting } from "@paws/core/Settings"

const HttpOrigin = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^https?:\/\/[^/\s]+\/?$/, { message: "must be an http:// or https:// origin" })),
)

/**
 * Where path-form exposed ports (`/p/{id}/`) are served: a listener of their own, so guest pages
 * never share an origin with the console (part of `paws control`'s environment; ControlConfig lists them).
 */
export const exposureListenerSettings = {
  exposurePort: customSetting(
    "PAWS_EXPOSURE_PORT",
    "(unset: PAWS_PORT + 1, or any free port when PAWS_PORT is 0)",
    "port the path form of exposed ports (/p/{id}/) listens on, on PAWS_HOST: another origin than the console's",
    Config.schema(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))), "PAWS_EXPOSURE_PORT")
      .pipe(Config.option),
  ),
  exposureUrl: customSetting(
    "PAWS_EXPOSURE_URL",
    "(unset: the control URL's host at PAWS_EXPOSURE_PORT)",
    "the origin browsers reach that listener at (https://ports.example.com); must not be the console's origin",
    Config.schema(HttpOrigin, "PAWS_EXPOSURE_URL").pipe(Config.option),
  ),
}
