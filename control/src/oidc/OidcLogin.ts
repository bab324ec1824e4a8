import type { ApiScope } from "@paws/core"
import { Context, Data, Effect, Layer, Redacted } from "effect"
import * as client from "openid-client"
import { OidcConfig, type OidcSettings } from "./OidcConfig.ts"
import { scopesFor } from "./OidcScopeMap.ts"

/** A sign-in that cannot go on: `status` and a message for the person at the browser. */
export class OidcLoginFailed extends Data.TaggedError("OidcLoginFailed")<{
  readonly status: number
  readonly message: string
}> {}

/** What the browser keeps between login and callback (cookie `paws_oidc`, HttpOnly, 10 minutes). */
interface Pending {
  readonly state: string
  readonly nonce: string
  readonly verifier: string
  readonly returnTo: string
  readonly redirectUri: string
}

export interface OidcUser {
  readonly subject: string
  readonly email: string | undefined
  /** Empty when the scope map grants this user nothing. */
  readonly scopes: ReadonlyArray<ApiScope>
  readonly project: string
  readonly returnTo: string
}

const encode = (p: Pending) => Buffer.from(JSON.stringify(p)).toString("base64url")
const decode = (text: string): Pending | undefined => {
  try {
    const p = JSON.parse(Buffer.from(text, "base64url").toString("utf8"))
    return typeof p?.state === "string" && typeof p.verifier === "string" ? p : undefined
  } catch {
    return undefined
  }
}

const failed = (status: number, message: string) => new OidcLoginFailed({ status, message })

/**
 * The relying party (authorization code + PKCE, state and nonce, by `openid-client`). The
 * provider's metadata is discovered at the first login and kept; a failed discovery is retried
 * at the next. The pending login lives in the browser's cookie, so any replica can finish it.
 */
export class OidcLogin extends Context.Service<OidcLogin, {
  readonly enabled: boolean
  readonly begin: (returnTo: string, redirectUri: string) => Effect.Effect<
    { readonly location: string; readonly pending: string },
    OidcLoginFailed
  >
  readonly complete: (callbackUrl: URL, pending: string | undefined) => Effect.Effect<OidcUser, OidcLoginFailed>
}>()("paws/control/OidcLogin") {
  static readonly layer = Layer.effect(
    OidcLogin,
    Effect.gen(function* () {
      const { settings } = yield* OidcConfig
      let discovered: Promise<client.Configuration> | undefined
      const configuration = (s: OidcSettings) => {
        discovered ??= client.discovery(
          s.issuer,
          s.clientId,
          undefined,
          s.clientSecret === undefined ? client.None() : client.ClientSecretPost(Redacted.value(s.clientSecret)),
          s.allowHttp ? { execute: [client.allowInsecureRequests] } : undefined,
        ).catch((e) => {
          discovered = undefined
          throw e
        })
        return Effect.tryPromise({
          try: () => discovered!,
          catch: (e) => failed(502, `the OpenID provider ${s.issuer.href} could not be reached: ${String(e)}`),
        })
      }
      const on = (): Effect.Effect<OidcSettings, OidcLoginFailed> =>
        settings === undefined
          ? Effect.fail(failed(404, "single sign-on is not configured (PAWS_OIDC_ISSUER)"))
          : Effect.succeed(settings)

      const begin = Effect.fn("OidcLogin.begin")(function* (returnTo: string, redirectUri: string) {
        const s = yield* on()
        const config = yield* configuration(s)
        const pending: Pending = {
          state: client.randomState(),
          nonce: client.randomNonce(),
          verifier: client.randomPKCECodeVerifier(),
          returnTo,
          redirectUri,
        }
        const challenge = yield* Effect.promise(() => client.calculatePKCECodeChallenge(pending.verifier))
        const location = client.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope: s.requestScopes,
          code_challenge: challenge,
          code_challenge_method: "S256",
          state: pending.state,
          nonce: pending.nonce,
        })
        return { location: location.href, pending: encode(pending) }
      })

      const complete = Effect.fn("OidcLogin.complete")(function* (callbackUrl: URL, pendingText: string | undefined) {
        const s = yield* on()
        const pending = pendingText === undefined ? undefined : decode(pendingText)
        if (pending === undefined) {
          return yield* failed(400, "this sign-in expired or was started in another browser: sign in again")
        }
        const error = callbackUrl.searchParams.get("error")
        if (error !== null) {
          const description = callbackUrl.searchParams.get("error_description") ?? ""
          return yield* failed(403, `the OpenID provider refused the sign-in: ${error} ${description}`.trim())
        }
        const config = yield* configuration(s)
        // The provider answered at the registered URL; compare against the one the login asked for.
        const current = new URL(pending.redirectUri)
        current.search = callbackUrl.search
        const tokens = yield* Effect.tryPromise({
          try: () =>
            client.authorizationCodeGrant(config, current, {
              pkceCodeVerifier: pending.verifier,
              expectedState: pending.state,
              expectedNonce: pending.nonce,
              idTokenExpected: true,
            }),
          catch: (e) => failed(400, `the sign-in could not be completed: ${e instanceof Error ? e.message : e}`),
        })
        const idClaims = tokens.claims()!
        // Many providers release groups and email at the userinfo endpoint only.
        const userinfo = config.serverMetadata().userinfo_endpoint === undefined ? {} : yield* Effect.tryPromise({
          try: () => client.fetchUserInfo(config, tokens.access_token, idClaims.sub),
          catch: (e) => failed(502, `the OpenID provider's userinfo failed: ${e instanceof Error ? e.message : e}`),
        })
        const claims: Record<string, unknown> = { ...userinfo, ...idClaims }
        return {
          subject: idClaims.sub,
          email: typeof claims["email"] === "string" ? claims["email"] : undefined,
          scopes: scopesFor(s.rules, claims),
          project: s.project,
          returnTo: pending.returnTo,
        }
      })

      return OidcLogin.of({ enabled: settings !== undefined, begin, complete })
    }),
  )
}
