import { useEffect, useRef, useState } from "preact/hooks"
import { api, problem, type Session } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { useSessionEvents } from "../sessionEvents.ts"
import { ErrorNote, ms, Page, Status, When } from "../ui.tsx"
import { EgressPanel, PortsPanel, SpecPanel } from "./SessionPanels.tsx"

const terminal = new Set(["completed", "failed", "timeout", "cancelled"])

/** One session: status and actions, its spec, timeline, live output, result, egress decisions and exposed ports. */
export const SessionPage = (props: { id: string }) => {
  const session = useLoad(() => api.GET("/v1/sessions/{id}", { params: { path: { id: props.id } } }), [props.id], 2000)
  const live = useSessionEvents(props.id)
  const [actionError, setActionError] = useState<string | undefined>(undefined)
  const s = session.data
  const act = async (call: () => Promise<{ error?: unknown }>) => {
    setActionError(undefined)
    const reply = await call()
    if (reply.error !== undefined) setActionError(problem(reply.error))
    session.reload()
  }
  const path = { params: { path: { id: props.id } } }
  const actions = s === undefined ? null : (
    <div class="actions">
      {s.status === "awaiting_approval"
        ? (
          <>
            <button type="button" onClick={() => act(() => api.POST("/v1/sessions/{id}/approve", path))}>
              Approve
            </button>
            <button type="button" onClick={() => act(() => api.POST("/v1/sessions/{id}/deny", path))}>Deny</button>
          </>
        )
        : null}
      {terminal.has(s.status)
        ? null
        : (
          <button type="button" class="danger" onClick={() => act(() => api.DELETE("/v1/sessions/{id}", path))}>
            Cancel session
          </button>
        )}
    </div>
  )
  return (
    <Page title={`Session ${props.id.slice(0, 8)}`} actions={actions}>
      <ErrorNote error={session.error ?? actionError} />
      {s === undefined ? <p>Loading…</p> : <Summary session={s} />}
      <h2>Timeline</h2>
      <ol class="timeline" aria-label="State changes">
        {live.timeline.map((e, i) => (
          <li key={i}>
            <Status status={e.status} /> <When at={e.at} />
            {e.reason === undefined ? null : <span class="muted">— {e.reason}</span>}
          </li>
        ))}
      </ol>
      <h2>Output</h2>
      <div class="output">
        <h3>stdout</h3>
        <Follow text={live.stdout} testId="stdout" />
        <h3>stderr</h3>
        <Follow text={live.stderr} testId="stderr" />
      </div>
      {s?.result == null ? null : (
        <>
          <h2>Result</h2>
          <dl class="facts">
            <dt>Exit code</dt>
            <dd data-testid="exit-code">{s.result.exitCode ?? "—"}</dd>
            {s.result.error === undefined ? null : (
              <>
                <dt>Error</dt>
                <dd>{s.result.error}</dd>
              </>
            )}
            {s.result.output == null ? null : (
              <>
                <dt>Output</dt>
                <dd>
                  <pre>{JSON.stringify(s.result.output, null, 2)}</pre>
                </dd>
              </>
            )}
          </dl>
        </>
      )}
      <EgressPanel id={props.id} decisions={live.decisions} />
      {s === undefined ? null : <PortsPanel id={props.id} live={!terminal.has(s.status)} />}
      {s === undefined ? null : <SpecPanel spec={s.spec} />}
    </Page>
  )
}

const Summary = (props: { session: Session }) => {
  const s = props.session
  return (
    <dl class="facts">
      <dt>Status</dt>
      <dd data-testid="session-status">
        <Status status={s.status} />
        {s.reason == null ? null : <span class="muted">{s.reason}</span>}
      </dd>
      <dt>Node</dt>
      <dd>{s.node ?? "—"}</dd>
      <dt>Daemon</dt>
      <dd>{s.daemon === undefined ? "—" : <a href={`/daemons/${s.daemon}`}>{s.daemon}</a>}</dd>
      <dt>Created</dt>
      <dd>
        <When at={s.createdAt} />
      </dd>
      <dt>Started</dt>
      <dd>
        <When at={s.startedAt} />
      </dd>
      <dt>Duration</dt>
      <dd>{ms(s.durationMs)}</dd>
    </dl>
  )
}

/** Streamed text that stays scrolled to its newest line unless the reader scrolled up to look at older ones. */
const Follow = (props: { text: string; testId: string }) => {
  const box = useRef<HTMLPreElement>(null)
  const pinned = useRef(true)
  useEffect(() => {
    const el = box.current
    if (el !== null && pinned.current) el.scrollTop = el.scrollHeight
  }, [props.text])
  const onScroll = () => {
    const el = box.current
    if (el !== null) pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24
  }
  return (
    <pre ref={box} data-testid={props.testId} tabIndex={0} onScroll={onScroll} aria-label={props.testId}>
      {props.text}
    </pre>
  )
}
