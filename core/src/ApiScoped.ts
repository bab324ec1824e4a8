import type { HttpApiEndpoint } from "effect/http-api"
import { OpenApi } from "effect/http-api"
import type { ApiScope } from "./ApiKeys.ts"
import { RequiredScope } from "./ApiMiddleware.ts"

/** Annotates an endpoint with the scope its callers need, for the auth middleware and the docs. */
export const scoped = (scope: ApiScope, summary: string, description?: string) => <E>(endpoint: E): E =>
  (endpoint as unknown as HttpApiEndpoint.Top).annotate(RequiredScope, scope).annotateMerge(
    OpenApi.annotations({
      summary,
      description: `${description ?? summary}\n\nRequires scope \`${scope}\` (or one that implies it).`,
    }),
  ) as unknown as E
