import createClient, { type Middleware } from "openapi-fetch"
import type { components, paths } from "../../sdk/src/generated/schema.ts"

export type Schemas = components["schemas"]
export type Session = Schemas["Session"]
export type NodeInfo = Schemas["NodeInfo"]

/** Who is signed in: the body of POST /v1/auth/login and GET /v1/auth/me (see the auth contract). */
export interface Me {
  readonly actor: string
  readonly project: string
  readonly scopes: ReadonlyArray<string>
  readonly csrfToken: string
  readonly expiresAt: string
  readonly via: string
}

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

/** Raw JSON calls for the sign-in endpoints (their own group; not every build's spec has them yet). */
const authCall = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(method === "GET" ? {} : { "X-Paws-CSRF": csrfToken }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  const json: unknown = text === "" ? undefined : JSON.parse(text)
  return { ok: response.ok, status: response.status, json }
}

export const auth = {
  login: (key: string) => authCall("POST", "/v1/auth/login", { key }),
  me: () => authCall("GET", "/v1/auth/me"),
  logout: () => authCall("POST", "/v1/auth/logout"),
  oidcEnabled: async () => {
    const reply = await authCall("GET", "/v1/auth/oidc").catch(() => undefined)
    return reply?.ok === true && (reply.json as { enabled?: boolean }).enabled === true
  },
}
