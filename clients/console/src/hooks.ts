import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import { problem } from "./api.ts"

interface Loaded<A> {
  readonly data: A | undefined
  readonly error: string | undefined
  readonly reload: () => void
}

/**
 * Loads `load()` now, again when `deps` change, and every `everyMs` if given (the console's
 * "live" views poll: simple, and correct across control replicas).
 */
export const useLoad = <A>(
  load: () => Promise<{ data?: A; error?: unknown }>,
  deps: ReadonlyArray<unknown>,
  everyMs?: number,
): Loaded<A> => {
  const [data, setData] = useState<A | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const latest = useRef(0)
  const run = useCallback(() => {
    const ticket = ++latest.current
    load().then(
      (reply) => {
        if (ticket !== latest.current) return
        if (reply.error !== undefined) setError(problem(reply.error))
        else {
          setError(undefined)
          setData(reply.data)
        }
      },
      (e: unknown) => ticket === latest.current && setError(String(e)),
    )
  }, deps)
  useEffect(() => {
    run()
    if (everyMs === undefined) return
    const timer = setInterval(run, everyMs)
    return () => clearInterval(timer)
  }, [run, everyMs])
  return { data, error, reload: run }
}
