import { useState } from "preact/hooks"
import { api, problem, type Schemas } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { navigate } from "../router.ts"
import { Empty, ErrorNote, ms, Page, shortId, Status, Table, When } from "../ui.tsx"

const triggerDetail = (t: Schemas["Trigger"]) =>
  t.kind === "cron"
    ? `${t.schedule}${t.timeZone === undefined ? "" : ` (${t.timeZone})`}`
    : t.kind === "watch"
    ? `${t.url} every ${t.intervalSeconds} s`
    : t.kind === "github"
    ? `${t.filters.length} filter(s)`
    : `POST /v1/hooks/…/${t.name}`

const limitText = (n: number | null | undefined) => (n === null || n === undefined ? "no limit" : String(n))

/** One daemon: triggers, limits, last invocations and LLM/HTTP history; run now, enable / disable. */
export const DaemonPage = (props: { name: string }) => {
  const path = { params: { path: { name: props.name } } }
  const daemon = useLoad(() => api.GET("/v1/daemons/{name}", path), [props.name])
  const runs = useLoad(
    () => api.GET("/v1/sessions", { params: { query: { daemon: props.name, limit: "10" } } }),
    [props.name],
    3000,
  )
  const history = useLoad(
    () => api.GET("/v1/daemons/{name}/history", { params: { ...path.params, query: { limit: "20" } } }),
    [
      props.name,
    ],
  )
  const [error, setError] = useState<string | undefined>(undefined)
  const d = daemon.data
  const runNow = async () => {
    const reply = await api.POST("/v1/daemons/{name}/run", path)
    if (reply.error !== undefined) return setError(problem(reply.error))
    navigate(`/sessions/${reply.data.sessionId}`)
  }
  const toggle = async () => {
    if (d === undefined) return
    const reply = await api.PATCH("/v1/daemons/{name}", { ...path, body: { enabled: !d.enabled } })
    setError(reply.error === undefined ? undefined : problem(reply.error))
    daemon.reload()
  }
  const actions = (
    <div class="actions">
      <button type="button" onClick={runNow}>Run now</button>
      <button type="button" onClick={toggle} disabled={d === undefined}>
        {d?.enabled === false ? "Enable" : "Disable"}
      </button>
    </div>
  )
  const l = d?.limits
  return (
    <Page title={`Daemon ${props.name}`} actions={actions}>
      <ErrorNote error={daemon.error ?? error} />
      {d === undefined ? null : (
        <dl class="facts">
          <dt>Enabled</dt>
          <dd>{d.enabled ? "yes" : "no"}</dd>
          <dt>Concurrency</dt>
          <dd>{d.concurrency}</dd>
          <dt>Limits</dt>
          <dd>
            {`${limitText(l?.maxInvocationsPerHour)}/hour, ${limitText(l?.maxInvocationsPerDay)}/day, ` +
              `${limitText(l?.maxConcurrentSessions)} at once, ${limitText(l?.maxSessionMinutesPerDay)} min/day`}
          </dd>
        </dl>
      )}
      <h2>Triggers</h2>
      <Table label="Triggers" head={["Name", "Kind", "Detail"]}>
        {(d?.triggers ?? []).length === 0 ? <Empty columns={3} text="Runs only when asked." /> : null}
        {(d?.triggers ?? []).map((t) => (
          <tr key={t.name}>
            <td>{t.name}</td>
            <td>{t.kind}</td>
            <td>{triggerDetail(t)}</td>
          </tr>
        ))}
      </Table>
      <h2>Last invocations</h2>
      <Table label="Last invocations" head={["Session", "Status", "Trigger", "Created", "Duration"]}>
        {(runs.data?.sessions ?? []).length === 0 ? <Empty columns={5} text="Never ran." /> : null}
        {(runs.data?.sessions ?? []).map((s) => (
          <tr key={s.id}>
            <td>
              <a href={`/sessions/${s.id}`}>{shortId(s.id)}</a>
            </td>
            <td>
              <Status status={s.status} />
            </td>
            <td>{s.trigger === undefined ? "—" : `${s.trigger.kind}:${s.trigger.name}`}</td>
            <td>
              <When at={s.createdAt} />
            </td>
            <td>{ms(s.durationMs)}</td>
          </tr>
        ))}
      </Table>
      <h2>History</h2>
      <ErrorNote error={history.error} />
      <Table label="History" head={["Time", "Request", "Status", "Session"]}>
        {(history.data?.entries ?? []).length === 0 ? <Empty columns={4} text="No recorded exchanges." /> : null}
        {(history.data?.entries ?? []).map((h, i) => (
          <tr key={i}>
            <td>
              <When at={h.time} />
            </td>
            <td>{h.method} {h.host}{h.path}</td>
            <td>{h.status}</td>
            <td>
              <a href={`/sessions/${h.sessionId}`}>{shortId(h.sessionId)}</a>
            </td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}
