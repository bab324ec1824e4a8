import { useEffect, useState } from "preact/hooks"

/** Client routing on real paths (control serves index.html for any unknown non-API path). */
const listeners = new Set<() => void>()

export const navigate = (to: string) => {
  if (to === location.pathname + location.search) return
  history.pushState(null, "", to)
  for (const l of listeners) l()
}

addEventListener("popstate", () => {
  for (const l of listeners) l()
})

export interface Route {
  readonly path: string
  readonly query: URLSearchParams
}

export const useRoute = (): Route => {
  const [, setTick] = useState(0)
  useEffect(() => {
    const l = () => setTick((n) => n + 1)
    listeners.add(l)
    return () => void listeners.delete(l)
  }, [])
  return { path: location.pathname, query: new URLSearchParams(location.search) }
}

/** A link that routes in the page (and still opens in a new tab with a modifier key). */
export const onLinkClick = (event: MouseEvent) => {
  const a = (event.target as HTMLElement).closest("a")
  if (a === null || a.origin !== location.origin || a.target !== "" || a.hasAttribute("download")) return
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  if (a.pathname.startsWith("/v1/") || a.pathname.startsWith("/p/")) return
  event.preventDefault()
  navigate(a.pathname + a.search)
}
