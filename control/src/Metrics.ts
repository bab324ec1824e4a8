import { Context, Effect, Layer } from "effect"
import { isControlPath } from "./http/ConsoleAssets.ts"

const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

interface Histogram {
  counts: Array<number>
  sum: number
  count: number
}

/**
 * Collapses ids in paths so the route label has bounded cardinality. Every segment in an id
 * position counts, not only well-formed ids: a request with a malformed id (a 400, or a 401
 * without a key) still reaches a route, and each distinct one must not become a new label.
 */
export const routeLabel = (path: string): string => {
  const clean = path.split("?")[0]!.replace(/\/{2,}/g, "/")
  if (!isControlPath(clean)) return "console" // the web console's pages and assets: one label, however many paths
  return clean.replace(/^\/v1\/(sessions|keys|nodes\/tokens)\/[^/]+(\/events)?\/?$/, "/v1/$1/:id$2")
}

/** Past this many distinct route labels, further ones are counted as "other" (a backstop for odd paths). */
const maxRouteLabels = 64

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
const labels = (l: Record<string, string>) => `{${Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`

/**
 * In-process counters rendered in the Prometheus text format. Plain maps, not Effect's
 * metric registry: the hot path is one map update per request and rendering is trivial.
 * Gauges that live in the database (sessions by status, queue depth) are read at scrape.
 */
export class Metrics extends Context.Service<Metrics, {
  readonly recordRequest: (method: string, path: string, status: number, seconds: number) => void
  readonly sessionCreated: () => void
  readonly render: (
    gauges: ReadonlyArray<{ name: string; help: string; samples: ReadonlyArray<[Record<string, string>, number]> }>,
  ) => string
}>()("paws/control/Metrics") {
  static readonly layer = Layer.effect(
    Metrics,
    Effect.sync(() => {
      const requests = new Map<string, number>()
      const routes = new Set<string>()
      const latency = new Map<string, Histogram>()
      let created = 0
      return Metrics.of({
        recordRequest: (method, path, status, seconds) => {
          const label = routeLabel(path)
          const route = routes.has(label) || routes.size < maxRouteLabels ? label : "other"
          routes.add(route)
          const key = `${method}\u0000${route}\u0000${status}`
          requests.set(key, (requests.get(key) ?? 0) + 1)
          const hkey = `${method}\u0000${route}`
          let h = latency.get(hkey)
          if (h === undefined) {
            h = { counts: buckets.map(() => 0), sum: 0, count: 0 }
            latency.set(hkey, h)
          }
          for (let i = 0; i < buckets.length; i++) if (seconds <= buckets[i]!) h.counts[i]! += 1
          h.sum += seconds
          h.count += 1
        },
        sessionCreated: () => {
          created += 1
        },
        render: (gauges) => {
          const out: Array<string> = []
          out.push("# HELP paws_sessions_created_total Sessions accepted by POST /v1/sessions on this replica.")
          out.push("# TYPE paws_sessions_created_total counter")
          out.push(`paws_sessions_created_total ${created}`)
          for (const g of gauges) {
            out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`)
            for (const [l, v] of g.samples) out.push(`${g.name}${Object.keys(l).length ? labels(l) : ""} ${v}`)
          }
          out.push("# HELP paws_http_requests_total HTTP requests by method, route and status.")
          out.push("# TYPE paws_http_requests_total counter")
          for (const [key, n] of requests) {
            const [method, route, status] = key.split("\u0000") as [string, string, string]
            out.push(`paws_http_requests_total${labels({ method, route, status })} ${n}`)
          }
          out.push("# HELP paws_http_request_duration_seconds HTTP request latency.")
          out.push("# TYPE paws_http_request_duration_seconds histogram")
          for (const [key, h] of latency) {
            const [method, route] = key.split("\u0000") as [string, string]
            buckets.forEach((b, i) =>
              out.push(
                `paws_http_request_duration_seconds_bucket${labels({ method, route, le: String(b) })} ${h.counts[i]}`,
              )
            )
            out.push(`paws_http_request_duration_seconds_bucket${labels({ method, route, le: "+Inf" })} ${h.count}`)
            out.push(`paws_http_request_duration_seconds_sum${labels({ method, route })} ${h.sum}`)
            out.push(`paws_http_request_duration_seconds_count${labels({ method, route })} ${h.count}`)
          }
          return out.join("\n") + "\n"
        },
      })
    }),
  )
}
