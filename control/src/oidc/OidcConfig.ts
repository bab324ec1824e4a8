import { Config, ConfigProvider, Context, Effect, Layer, Redacted } from "effect"
import { flagSetting, optionalSetting, readSettings, secretSetting, textSetting } from "@paws/core/Settings"
import { readFileSync } from "node:fs"
import { parseScopeMap, type ScopeRule } from "./OidcScopeMap.ts"

/** Settings of single sign-on through an OpenID provider (part of `paws control`'s environment). */
export const oidcSettings = {
  issuer: optionalSetting(
    "PAWS_OIDC_ISSUER",
    "no single sign-on",
    "OpenID provider's issuer URL (https); control signs console users in through it",
  ),
  clientId: optionalSetting("PAWS_OIDC_CLIENT_ID", "none", "control's client id at the OpenID provider"),
  clientSecret: secretSetting(
    "PAWS_OIDC_CLIENT_SECRET",
    "PAWS_OIDC_CLIENT_SECRET_FILE, else a public client (PKCE only)",
    "control's client secret at the OpenID provider",
  ),
  clientSecretFile: optionalSetting(
    "PAWS_OIDC_CLIENT_SECRET_FILE",
    "none",
    "file holding the client secret (instead of PAWS_OIDC_CLIENT_SECRET)",
  ),
  redirectUrl: optionalSetting(
    "PAWS_OIDC_REDIRECT_URL",
    "PAWS_PUBLIC_URL/v1/auth/oidc/callback, else the URL of the login request",
    "the callback URL registered at the provider",
  ),
  scopeMap: optionalSetting(
    "PAWS_OIDC_SCOPE_MAP",
    "none (required with PAWS_OIDC_ISSUER)",
    "which claim values give which API scopes: CLAIM:VALUE=SCOPE[+SCOPE…], comma-separated, e.g. " +
      "`groups:paws-admins=admin,groups:paws-devs=sessions:write+read`; a user matching none is refused (403)",
  ),
  project: textSetting("PAWS_OIDC_PROJECT", "default", "the project single-sign-on users act in"),
  requestScopes: textSetting(
    "PAWS_OIDC_REQUEST_SCOPES",
    "openid email profile",
    "OAuth scopes asked of the provider (add the one that releases your mapped claim, e.g. `groups` for Dex)",
  ),
  allowHttp: flagSetting(
    "PAWS_TEST_OIDC_ALLOW_HTTP",
    false,
    "TEST ONLY: let the OpenID provider be a plain-http loopback URL; never set in production",
  ),
}

export interface OidcSettings {
  readonly issuer: URL
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted | undefined
  readonly redirectUrl: string | undefined
  readonly rules: ReadonlyArray<ScopeRule>
  readonly project: string
  readonly requestScopes: string
  readonly allowHttp: boolean
}

const invalid = (name: string, message: string) =>
  Effect.fail(
    new Config.ConfigError(new ConfigProvider.SourceError({ message: `${name}: ${message}` })),
  )

const isLoopback = (url: URL) => ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)

/** The settings checked together, or undefined when single sign-on is off (no issuer). */
const validated = Config.mapEffect(readSettings(oidcSettings), (c) =>
  Effect.gen(function* () {
    if (c.issuer === undefined || c.issuer.trim() === "") return undefined
    const issuer = URL.parse(c.issuer.trim())
    if (issuer === null) return yield* invalid("PAWS_OIDC_ISSUER", "must be a URL")
    if (issuer.protocol !== "https:" && !(c.allowHttp && issuer.protocol === "http:" && isLoopback(issuer))) {
      return yield* invalid("PAWS_OIDC_ISSUER", "must be an https:// URL")
    }
    if (c.clientId === undefined || c.clientId.trim() === "") {
      return yield* invalid("PAWS_OIDC_CLIENT_ID", "must be set when PAWS_OIDC_ISSUER is")
    }
    const rules = parseScopeMap(c.scopeMap ?? "")
    if (typeof rules === "string") return yield* invalid("PAWS_OIDC_SCOPE_MAP", rules)
    if (c.clientSecret !== undefined && c.clientSecretFile !== undefined) {
      return yield* invalid("PAWS_OIDC_CLIENT_SECRET_FILE", "set it or PAWS_OIDC_CLIENT_SECRET, not both")
    }
    let clientSecret = c.clientSecret
    if (c.clientSecretFile !== undefined) {
      const file = c.clientSecretFile
      const text = yield* Effect.try(() => readFileSync(file, "utf8").trim()).pipe(
        Effect.catch((e) => invalid("PAWS_OIDC_CLIENT_SECRET_FILE", `cannot read ${file}: ${String(e)}`)),
      )
      if (text === "") return yield* invalid("PAWS_OIDC_CLIENT_SECRET_FILE", `${file} is empty`)
      clientSecret = Redacted.make(text)
    }
    const redirectUrl = c.redirectUrl?.trim()
    if (redirectUrl !== undefined && redirectUrl !== "" && !/^https?:\/\//.test(redirectUrl)) {
      return yield* invalid("PAWS_OIDC_REDIRECT_URL", "must be an http:// or https:// URL")
    }
    if (!c.requestScopes.split(/\s+/).includes("openid")) {
      return yield* invalid("PAWS_OIDC_REQUEST_SCOPES", "must include `openid`")
    }
    return {
      issuer,
      clientId: c.clientId.trim(),
      clientSecret,
      redirectUrl: redirectUrl === "" ? undefined : redirectUrl,
      rules,
      project: c.project,
      requestScopes: c.requestScopes,
      allowHttp: c.allowHttp,
    } satisfies OidcSettings
  }))

/** Single sign-on settings; `settings` undefined: it is off. */
export class OidcConfig extends Context.Service<OidcConfig, { readonly settings: OidcSettings | undefined }>()(
  "paws/control/OidcConfig",
) {
  static readonly layer = Layer.effect(OidcConfig, Effect.map(validated, (settings) => OidcConfig.of({ settings })))
}
