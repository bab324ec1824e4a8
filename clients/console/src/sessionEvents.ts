import { useEffect, useState } from "preact/hooks"

/** The SSE events of GET /v1/sessions/{id}/events (core/src/SessionEvent.ts; SSE bodies are not in the OpenAPI spec). */
export interface StatusEvent {
  readonly status: string
  readonly at: string
  readonly reason?: string
}
export interface ProxyDecision {
  readonly time: string
  readonly decision: string
  readonly host: string
  readonly method?: string
  readonly path?: string
  readonly status?: number
  readonly injected?: ReadonlyArray<string>
  readonly reason?: string
  readonly count?: number
}

export interface LiveSession {
  readonly timeline: ReadonlyArray<StatusEvent>
  readonly stdout: string
  readonly stderr: string
  readonly decisions: ReadonlyArray<ProxyDecision>
  readonly ended: boolean
}

const initial: LiveSession = { timeline: [], stdout: "", stderr: "", decisions: [], ended: false }
const terminal = new Set(["completed", "failed", "timeout", "cancelled"])
const outputCap = 512 * 1024 // keeps the page light; the result holds the whole output

/**
 * A session's events over Server-Sent Events (EventSource sends the console's cookie; it cannot
 * send Authorization). The stream replays from the first event, then follows live; once the session
 * has ended and the server closed the stream it is closed here, else the browser would reconnect forever.
 */
export const useSessionEvents = (id: string): LiveSession => {
  const [live, setLive] = useState<LiveSession>(initial)
  useEffect(() => {
    setLive(initial)
    const source = new EventSource(`/v1/sessions/${encodeURIComponent(id)}/events`, { withCredentials: true })
    const on = <A>(name: string, f: (state: LiveSession, event: A) => LiveSession) =>
      source.addEventListener(name, (e) => {
        const event = JSON.parse((e as MessageEvent<string>).data) as A
        setLive((state) => {
          const next = f(state, event)
          ended = next.ended
          return next
        })
      })
    let ended = false
    // The server ends the stream after a finished session's last event: stop the browser reconnecting then.
    source.addEventListener("error", () => ended && source.close())
    on<StatusEvent>(
      "status",
      (s, e) => ({ ...s, timeline: [...s.timeline, e], ended: s.ended || terminal.has(e.status) }),
    )
    on<{ stream: "stdout" | "stderr"; data: string }>("output", (s, e) => ({
      ...s,
      [e.stream]: (s[e.stream] + e.data).slice(-outputCap),
    }))
    on<{ event: ProxyDecision }>("audit", (s, e) => ({ ...s, decisions: [...s.decisions, e.event].slice(-500) }))
    return () => source.close()
  }, [id])
  return live
}
