import { Context } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { ApiScope } from "./ApiKeys.ts"
import type { KeyLimits } from "./Limits.ts"
import { defaultProject } from "./Project.ts"
import { Forbidden, InvalidRequest, PayloadTooLarge, Unauthorized } from "./Errors.ts"
import { RateLimited } from "./Limits.ts"

/** Who is calling: the API key that authenticated the request. */
export interface Principal {
  readonly keyId: string
  readonly scopes: ReadonlyArray<ApiScope>
  /** The key's project: everything it sees or acts on is in it. */
  readonly project: string
  readonly limits: KeyLimits
}

/** An `admin` key of the `default` project administers the instance (projects, keys of any project). */
export const isInstanceAdmin = (p: Principal): boolean => p.project === defaultProject && p.scopes.includes("admin")
export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Principal>()("paws/api/CurrentPrincipal") {}

/** Endpoint annotation: the scope an API key needs to call it. */
export class RequiredScope extends Context.Service<RequiredScope, ApiScope>()("paws/api/RequiredScope") {}

/** Bearer API-key authentication plus the scope check named by `RequiredScope`. */
export class ApiAuth extends HttpApiMiddleware.Service<ApiAuth, { provides: CurrentPrincipal }>()("paws/api/ApiAuth", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [Unauthorized, Forbidden, RateLimited],
  requiredForClient: true,
}) {}

/**
 * Turns request decoding failures into a 400 `InvalidRequest` naming each field, and
 * oversize bodies into 413, instead of the framework's empty responses.
 */
export class RequestValidation extends HttpApiMiddleware.Service<RequestValidation>()("paws/api/RequestValidation", {
  error: [InvalidRequest, PayloadTooLarge],
}) {}
