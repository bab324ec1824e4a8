import { Config, Data, Effect, Option, Redacted } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { homedir } from "node:os"
import { join, resolve } from "node:path"
import { customSetting, optionSetting, readSettings, textSetting } from "@paws/core/Settings"

/** Where the CLI talks to and with which key. */
export interface ClientSettings {
  readonly url: string
  readonly apiKey: Redacted.Redacted<string>
  readonly keySource: string
}

export class ClientConfigError extends Data.TaggedError("ClientConfigError")<{ readonly message: string }> {}

/** The CLI's settings (flags win over these, these over the config file); `--help` lists this table. */
export const clientSettings = {
  url: optionSetting("PAWS_URL", "the config file's url, else http://127.0.0.1:4000", "control-plane URL"),
  apiKey: customSetting(
    "PAWS_API_KEY",
    "(unset: the config file's apiKey, else ./.paws/admin.key)",
    "API key the CLI sends (Authorization: Bearer)",
    Config.option(Config.Redacted("PAWS_API_KEY")),
  ),
  configPath: textSetting(
    "PAWS_CONFIG",
    join(homedir(), ".config", "paws", "config.json"),
    'CLI config file: {"url": …, "apiKey": …}',
  ),
  dataDir: textSetting("PAWS_DATA_DIR", ".paws", "where `paws up` keeps its data (the CLI reads admin.key there)"),
}

interface FileConfig {
  readonly url?: string
  readonly apiKey?: string
}

const readConfigFile = (path: string): Effect.Effect<FileConfig, ClientConfigError> =>
  Effect.try({
    try: () => (existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) as FileConfig : {}),
    catch: (e) => new ClientConfigError({ message: `cannot read ${path}: ${String(e)}; fix or remove the file` }),
  })

/**
 * Flags win over the environment, which wins over the config file. With no key anywhere, a
 * local `paws up` data dir's admin key is used, so the two README commands just work.
 */
export const resolveClientSettings = (flags: { readonly url: Option.Option<string> }) =>
  Effect.gen(function* () {
    const { url: envUrl, apiKey: envKey, configPath, dataDir } = yield* readSettings(clientSettings)
    const file = yield* readConfigFile(configPath)
    const url = Option.getOrUndefined(flags.url) ?? Option.getOrUndefined(envUrl) ?? file.url ??
      "http://127.0.0.1:4000"
    if (!/^https?:\/\//.test(url)) {
      return yield* new ClientConfigError({ message: `PAWS_URL must start with http:// or https:// (got "${url}")` })
    }
    if (Option.isSome(envKey)) return { url, apiKey: envKey.value, keySource: "PAWS_API_KEY" }
    if (file.apiKey !== undefined) {
      return { url, apiKey: Redacted.make(file.apiKey), keySource: configPath }
    }
    const localKey = resolve(dataDir, "admin.key")
    if (existsSync(localKey)) {
      return { url, apiKey: Redacted.make(readFileSync(localKey, "utf8").trim()), keySource: localKey }
    }
    return yield* new ClientConfigError({
      message: `no API key: set PAWS_API_KEY, put "apiKey" in ${configPath}, ` +
        "or run `paws up` in this directory (it writes .paws/admin.key)",
    })
  }).pipe(Effect.mapError((e) =>
    e instanceof ClientConfigError ? e : new ClientConfigError({ message: `bad configuration: ${String(e)}` })
  ))
