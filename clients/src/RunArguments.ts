import { Data, Effect } from "effect"
import { hostPatternProblem } from "@paws/core/HostPattern"
import { envNameRegExp, headerNameRegExp } from "@paws/core/SessionSpec"

export class CliInputError extends Data.TaggedError("CliInputError")<{ readonly message: string }> {}

/** `HOST:Header=VALUE`; a VALUE of `$NAME` or `env:NAME` is read from the caller's environment. */
export const parseCredential = (raw: string) =>
  Effect.gen(function* () {
    const m = /^([^:=]+):([^=]+)=(.*)$/s.exec(raw)
    if (m === null) {
      return yield* new CliInputError({
        message: `--cred "${raw.replace(/=.*/s, "=…")}" must look like HOST:Header=VALUE, ` +
          "e.g. --cred 'api.anthropic.com:x-api-key=$ANTHROPIC_API_KEY'",
      })
    }
    const [, host, header, rawValue] = m as unknown as [string, string, string, string]
    const hostProblem = hostPatternProblem(host)
    if (hostProblem !== undefined) return yield* new CliInputError({ message: `--cred host "${host}" ${hostProblem}` })
    if (!headerNameRegExp.test(header)) {
      return yield* new CliInputError({ message: `--cred header "${header}" is not a valid HTTP header name` })
    }
    const envName = rawValue.startsWith("$")
      ? rawValue.slice(1)
      : rawValue.startsWith("env:")
      ? rawValue.slice(4)
      : undefined
    if (envName !== undefined && envNameRegExp.test(envName)) {
      const value = process.env[envName]
      if (value === undefined || value === "") {
        return yield* new CliInputError({ message: `--cred ${host}:${header} reads $${envName}, which is not set` })
      }
      return { host, header, value }
    }
    return { host, header, value: rawValue }
  })

export const parseEnvPair = (raw: string) =>
  Effect.gen(function* () {
    const i = raw.indexOf("=")
    const name = i < 0 ? raw : raw.slice(0, i)
    if (i < 0 || !envNameRegExp.test(name)) {
      return yield* new CliInputError({
        message: `--env "${name}" must look like NAME=VALUE with NAME of [A-Za-z_][A-Za-z0-9_]*`,
      })
    }
    return [name, raw.slice(i + 1)] as const
  })

/** `90`, `90ms`, `30s`, `5m`, `1h` → milliseconds. */
export const parseDuration = (raw: string) =>
  Effect.gen(function* () {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim())
    if (m === null) {
      return yield* new CliInputError({ message: `--timeout "${raw}" must be a duration like 30s, 5m or 120000 (ms)` })
    }
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "ms") as "ms" | "s" | "m" | "h"]
    return Math.round(Number(m[1]) * unit)
  })
