import { useState } from "preact/hooks"
import { api, type Schemas } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { navigate, useRoute } from "../router.ts"
import { Empty, ErrorNote, ms, Page, shortId, Status, Table, When } from "../ui.tsx"

const statuses: ReadonlyArray<Schemas["SessionStatus"]> = [
  "awaiting_approval",
  "pending",
  "starting",
  "running",
  "completed",
  "failed",
  "timeout",
  "cancelled",
]

/**
 * Sessions, newest first, filtered by status, daemon and node (all server side, so paging stays whole), paged by the
 * API's cursor; the filters and cursor live in the URL so a page can be shared.
 */
export const Sessions = () => {
  const { query } = useRoute()
  const status = query.get("status") ?? ""
  const daemon = query.get("daemon") ?? ""
  const node = query.get("node") ?? ""
  const cursor = query.get("cursor") ?? ""
  const [trail, setTrail] = useState<ReadonlyArray<string>>([])
  const page = useLoad(
    () =>
      api.GET("/v1/sessions", {
        params: {
          query: {
            limit: "25",
            ...(status === "" ? {} : { status: status as Schemas["SessionStatus"] }),
            ...(daemon === "" ? {} : { daemon }),
            ...(node === "" ? {} : { node }),
            ...(cursor === "" ? {} : { cursor }),
          },
        },
      }),
    [status, daemon, node, cursor],
    3000,
  )
  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams({ status, daemon, node, cursor, ...changes })
    for (const [k, v] of [...next]) if (v === "") next.delete(k)
    navigate(`/sessions${next.size === 0 ? "" : `?${next}`}`)
  }
  const onFilter = (event: Event) => {
    event.preventDefault()
    const form = new FormData(event.currentTarget as HTMLFormElement)
    setTrail([])
    go({
      status: String(form.get("status")),
      daemon: String(form.get("daemon")),
      node: String(form.get("node")),
      cursor: "",
    })
  }
  const rows = page.data?.sessions ?? []
  return (
    <Page title="Sessions">
      <form class="filters" onSubmit={onFilter} aria-label="Filter sessions">
        <label>
          Status
          <select name="status" value={status}>
            <option value="">any</option>
            {statuses.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Daemon <input name="daemon" value={daemon} />
        </label>
        <label>
          Node <input name="node" value={node} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={page.error} />
      <Table label="Sessions" head={["Session", "Status", "Daemon", "Node", "Created", "Duration", "Exit"]}>
        {rows.length === 0 ? <Empty columns={7} text="No sessions match." /> : null}
        {rows.map((s) => (
          <tr key={s.id}>
            <td>
              <a href={`/sessions/${s.id}`}>{shortId(s.id)}</a>
            </td>
            <td>
              <Status status={s.status} />
            </td>
            <td>{s.daemon ?? "—"}</td>
            <td>{s.node ?? "—"}</td>
            <td>
              <When at={s.createdAt} />
            </td>
            <td>{ms(s.durationMs)}</td>
            <td>{s.result?.exitCode ?? "—"}</td>
          </tr>
        ))}
      </Table>
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={cursor === ""}
          onClick={() => {
            const back = trail.at(-1) ?? ""
            setTrail(trail.slice(0, -1))
            go({ cursor: back })
          }}
        >
          Newer
        </button>
        <button
          type="button"
          disabled={page.data?.nextCursor == null}
          onClick={() => {
            setTrail([...trail, cursor])
            go({ cursor: page.data?.nextCursor ?? "" })
          }}
        >
          Older
        </button>
      </nav>
    </Page>
  )
}
