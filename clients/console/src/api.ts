import createClient, { type Middleware } from "openapi-fetch"
import type { components, paths } from "../../sdk/src/generated/schema.ts"

export type Schemas = components["schemas"]
export type Session = Schemas["Session"]
export type NodeInfo = Schemas["NodeInfo"]

/** Who is signed in: the body of POST /v1/auth/login and GET /v1/auth/me. */
export type Me = Schemas["ConsoleIdentity"]

let csrfToken = ""
let onUnauthorized = () => {}

/** The console's session cookie rides along by itself (same origin); mutations add the CSRF header. */
const csrf: Middleware = {
  onRequest({ request }) {
    if (!["GET", "HEAD", "OPTIONS"].includes(request.method)) request.headers.set("X-Paws-CSRF", csrfToken)
    return request
  },
  onResponse({ response }) {
    if (response.status === 401) onUnauthorized()
    return response
  },
}

/** The typed API client (openapi-fetch over the generated OpenAPI types). */
export const api = createClient<paths>({ baseUrl: location.origin, credentials: "same-origin" })
api.use(csrf)

export const setSignedIn = (me: Me | undefined) => {
  csrfToken = me?.csrfToken ?? ""
}
export const whenUnauthorized = (f: () => void) => {
  onUnauthorized = f
}

/** The message of an API error body (`{_tag, message}`), or a fallback. */
export const problem = (error: unknown, fallback = "request failed"): string => {
  if (typeof error === "object" && error !== null && "message" in error) return String(error.message)
  return fallback
}

/** Sign-in: the key is traded for an HttpOnly cookie; `me` finds an existing sign-in after a reload. */
export const auth = {
  login: (key: string) => api.POST("/v1/auth/login", { body: { key } }),
  me: () => api.GET("/v1/auth/me"),
  logout: () => api.POST("/v1/auth/logout"),
  oidcEnabled: async () => (await api.GET("/v1/auth/oidc").catch(() => undefined))?.data?.enabled === true,
}
