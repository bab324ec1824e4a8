import { api } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { Empty, ErrorNote, ms, Page, shortId, Status, Table, When } from "../ui.tsx"

const pageOf = (status: "running" | "pending" | "awaiting_approval") =>
  api.GET("/v1/sessions", { params: { query: { status, limit: "100" } } })

/** Nodes with capacity (lost ones too), running sessions and the queue, refreshed every 2 s. */
export const Overview = () => {
  const nodes = useLoad(() => api.GET("/v1/nodes"), [], 2000)
  const running = useLoad(() => pageOf("running"), [], 2000)
  const queued = useLoad(() => pageOf("pending"), [], 2000)
  const waiting = useLoad(() => pageOf("awaiting_approval"), [], 2000)
  const count = (page: { sessions: ReadonlyArray<unknown>; nextCursor: string | null } | undefined) =>
    page === undefined ? "…" : `${page.sessions.length}${page.nextCursor === null ? "" : "+"}`
  const slots = (nodes.data ?? []).filter((n) => n.status === "ready")
    .reduce((a, n) => ({ used: a.used + n.capacity.running, max: a.max + n.capacity.maxConcurrent }), {
      used: 0,
      max: 0,
    })
  return (
    <Page title="Overview">
      <ErrorNote error={nodes.error ?? running.error ?? queued.error} />
      <dl class="stats">
        <div>
          <dt>Running</dt>
          <dd data-testid="running-count">{count(running.data)}</dd>
        </div>
        <div>
          <dt>Queued</dt>
          <dd data-testid="queue-depth">{count(queued.data)}</dd>
        </div>
        <div>
          <dt>Awaiting approval</dt>
          <dd>{count(waiting.data)}</dd>
        </div>
        <div>
          <dt>Slots in use</dt>
          <dd>{slots.used} / {slots.max}</dd>
        </div>
      </dl>
      <h2>Nodes</h2>
      <Table label="Nodes" head={["Node", "Status", "Running", "Capacity", "Labels", "Last seen"]}>
        {(nodes.data ?? []).length === 0 ? <Empty columns={6} text="No nodes connected." /> : null}
        {(nodes.data ?? []).map((n) => (
          <tr key={n.id}>
            <td>{n.name}</td>
            <td>
              <Status status={n.status} />
            </td>
            <td>
              <meter min={0} max={n.capacity.maxConcurrent} value={n.capacity.running} aria-label={`${n.name} use`} />
              {" "}
              {n.capacity.running}
            </td>
            <td>{n.capacity.maxConcurrent}</td>
            <td class="labels">{Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(" ")}</td>
            <td>
              <When at={n.lastSeenAt} />
            </td>
          </tr>
        ))}
      </Table>
      <h2>Running sessions</h2>
      <Table label="Running sessions" head={["Session", "Daemon", "Node", "Started", "For"]}>
        {(running.data?.sessions ?? []).length === 0 ? <Empty columns={5} text="Nothing running." /> : null}
        {(running.data?.sessions ?? []).map((s) => (
          <tr key={s.id}>
            <td>
              <a href={`/sessions/${s.id}`}>{shortId(s.id)}</a>
            </td>
            <td>{s.daemon ?? "—"}</td>
            <td>{s.node ?? "—"}</td>
            <td>
              <When at={s.startedAt} />
            </td>
            <td>{s.startedAt === null ? "—" : ms(Date.now() - Date.parse(s.startedAt))}</td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}
