import { Effect } from "effect"
import { HttpRouter, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { extname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

/** Where `npm install` / `npm start` build the console (clients/console, Vite); not committed. */
export const consoleDistDir = fileURLToPath(new URL("../../../clients/console/dist", import.meta.url))

/**
 * Paths that belong to control itself (any API version, exposures, hooks, health, docs): an unknown
 * one is a JSON 404 there, never the console's index.html.
 */
const controlPath = /^\/(v\d+|p|hooks|metrics|healthz|readyz|openapi\.json|docs)(\/|$)/
export const isControlPath = (path: string): boolean => controlPath.test(path)

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
}

/** The page may load only what control serves; nobody may frame it (clickjacking on approve / revoke). */
const securityHeaders = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
}

interface Asset {
  readonly body: Uint8Array
  readonly contentType: string
}

/** The built files, read once (a few hundred KB); re-read while the build is missing, so a later build is picked up. */
let assets: Map<string, Asset> | undefined
const loadAssets = (): Map<string, Asset> | undefined => {
  if (assets !== undefined || !existsSync(join(consoleDistDir, "index.html"))) return assets
  const found = new Map<string, Asset>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else {
        found.set(`/${relative(consoleDistDir, path).split("\\").join("/")}`, {
          body: readFileSync(path),
          contentType: contentTypes[extname(name)] ?? "application/octet-stream",
        })
      }
    }
  }
  walk(consoleDistDir)
  assets = found
  return assets
}

const notFound = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.fail(new HttpServerError.HttpServerError({ reason: new HttpServerError.RouteNotFound({ request }) }))

/**
 * The web console at `/`: hashed files under /assets/ cached for a year (their names change with
 * their content), any other non-API path answered with index.html (never cached) so the app's
 * own routes (/sessions/…) survive a reload. Registered as the router's last resort: every API
 * route is more specific and wins.
 */
export const ConsoleAssets = HttpRouter.add(
  "GET",
  "*",
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    // The raw path, still percent-encoded as the built names are (not `new URL`: "//x/y" would parse as a host).
    const path = request.url.replace(/[?#].*$/s, "")
    if (isControlPath(path)) return notFound(request)
    const files = loadAssets()
    if (files === undefined) {
      return Effect.succeed(HttpServerResponse.text(
        "The paws console is not built: run `npm run build -w @paws/console` (npm install and npm start do it).\n",
        { status: 503 },
      ))
    }
    const file = files.get(path)
    if (file !== undefined && path !== "/index.html") {
      const immutable = path.startsWith("/assets/")
      return Effect.succeed(HttpServerResponse.uint8Array(file.body, {
        contentType: file.contentType,
        headers: {
          "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
          "x-content-type-options": "nosniff",
        },
      }))
    }
    if (path.startsWith("/assets/")) return notFound(request) // a stale hashed name: no HTML in its place
    const index = files.get("/index.html")!
    return Effect.succeed(HttpServerResponse.uint8Array(index.body, {
      contentType: index.contentType,
      headers: { "cache-control": "no-cache", ...securityHeaders },
    }))
  }),
)
