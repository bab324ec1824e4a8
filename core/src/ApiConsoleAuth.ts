import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { ApiScope } from "./ApiKeys.ts"
import { Unauthorized } from "./Errors.ts"
import { ProjectId } from "./Project.ts"

/** The console's sign-in cookie: an opaque random secret, stored only hashed. */
export const consoleCookieName = "paws_session"
/** Header a cookie-authenticated mutation must carry, with the sign-in's `csrfToken`. */
export const csrfHeaderName = "X-Paws-CSRF"

export const KeyLogin = Schema.Struct({
  /** An API key (`paws_…`): the sign-in acts with its scopes and project, and ends when it is revoked. */
  key: Schema.String.pipe(Schema.check(Schema.isPattern(/\S/, { message: "must be an API key, not blank" }))),
}).annotate({ identifier: "KeyLogin" })
export type KeyLogin = typeof KeyLogin.Type

/** Who the console is signed in as. */
export const ConsoleIdentity = Schema.Struct({
  /** `key:<key id>` or `oidc:<subject>`: how the audit log names this user. */
  actor: Schema.String,
  project: ProjectId,
  scopes: Schema.Array(ApiScope),
  /** Send as `X-Paws-CSRF` on every cookie-authenticated request but GET/HEAD/OPTIONS. */
  csrfToken: Schema.String,
  expiresAt: Schema.String,
  via: Schema.Literals(["key", "oidc"]),
  /** The OIDC user's email, when the provider gave one. */
  email: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "ConsoleIdentity" })
export type ConsoleIdentity = typeof ConsoleIdentity.Type

export const OidcStatus = Schema.Struct({ enabled: Schema.Boolean }).annotate({ identifier: "OidcStatus" })

const doc = (summary: string, description: string) => OpenApi.annotations({ summary, description })

/** Console sign-in: no API key needed to call these (they make or read the cookie). */
export class ConsoleAuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("login", "/login", { payload: KeyLogin, success: ConsoleIdentity, error: Unauthorized })
      .annotateMerge(doc(
        "Sign in with an API key",
        `Exchanges an API key for the console cookie \`${consoleCookieName}\` (HttpOnly, SameSite=Strict, Secure ` +
          "when control's public URL is https): every `/v1` endpoint then accepts the cookie in place of " +
          `\`Authorization: Bearer\`, with the key's scopes and project. Changes (any method but GET/HEAD/OPTIONS) ` +
          `made with the cookie need the header \`${csrfHeaderName}\` carrying \`csrfToken\` (else 403). ` +
          "The sign-in expires after PAWS_CONSOLE_SESSION_TTL and ends when the key is revoked.",
      )),
    HttpApiEndpoint.get("me", "/me", { success: ConsoleIdentity, error: Unauthorized })
      .annotateMerge(doc("Who is signed in", "The console cookie's sign-in, as login returned it; 401 without one.")),
    HttpApiEndpoint.post("logout", "/logout", { success: HttpApiSchema.NoContent })
      .annotateMerge(doc(
        "Sign out",
        `Ends the cookie's sign-in and clears the cookie (SameSite=Strict keeps other sites from calling it). Without a cookie: 204 too.`,
      )),
    HttpApiEndpoint.get("oidc", "/oidc", { success: OidcStatus })
      .annotateMerge(doc("Is single sign-on configured", "Whether `GET /v1/auth/oidc/login` signs in via OIDC.")),
  )
  .prefix("/v1/auth")
  .annotateMerge(OpenApi.annotations({ description: "Console sign-in: API key or OIDC login to a cookie." })) {}
