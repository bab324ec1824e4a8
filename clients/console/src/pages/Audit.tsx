import { useState } from "preact/hooks"
import { api } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { navigate, useRoute } from "../router.ts"
import { Empty, ErrorNote, Page, Table, When } from "../ui.tsx"

const fields = ["actor", "action", "daemon", "session", "since", "until"] as const

/** The audit log with filters (kept in the URL) and the hash chain's verification status on top. */
export const Audit = () => {
  const { query } = useRoute()
  const filter = Object.fromEntries(fields.map((f) => [f, query.get(f) ?? ""])) as Record<typeof fields[number], string>
  const cursor = query.get("cursor") ?? ""
  const [trail, setTrail] = useState<ReadonlyArray<string>>([])
  const verify = useLoad(() => api.GET("/v1/audit/verify"), [], 30_000)
  const page = useLoad(() => {
    const q: Record<string, string | number> = { limit: "50" }
    for (const f of fields) if (filter[f] !== "") q[f] = filter[f]
    if (cursor !== "") q["cursor"] = cursor
    return api.GET("/v1/audit", { params: { query: q } })
  }, [query.toString()])
  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams({ ...filter, cursor, ...changes })
    for (const [k, v] of [...next]) if (v === "") next.delete(k)
    navigate(`/audit${next.size === 0 ? "" : `?${next}`}`)
  }
  const onFilter = (event: Event) => {
    event.preventDefault()
    const form = new FormData(event.currentTarget as HTMLFormElement)
    setTrail([])
    go({ ...Object.fromEntries(fields.map((f) => [f, String(form.get(f) ?? "").trim()])), cursor: "" })
  }
  const v = verify.data
  return (
    <Page title="Audit log">
      <p role="status" data-testid="chain-status" class={v === undefined ? "muted" : v.ok ? "ok" : "error"}>
        {v === undefined
          ? "Verifying the hash chain…"
          : v.ok
          ? `Hash chain verified: ${v.checked} rows intact${v.head === null ? "" : ` (head #${v.head.id})`}.`
          : `Hash chain BROKEN at ${v.firstBroken?.kind ?? "row"} #${v.firstBroken?.id ?? "?"}: ${
            v.firstBroken?.reason ?? ""
          }`}
      </p>
      <ErrorNote error={verify.error} />
      <form class="filters" onSubmit={onFilter} aria-label="Filter the audit log">
        {fields.map((f) => (
          <label key={f}>
            {f}{" "}
            <input
              name={f}
              value={filter[f]}
              placeholder={f === "since" || f === "until" ? "2026-12-07T00:00:00Z" : ""}
            />
          </label>
        ))}
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={page.error} />
      <Table label="Audit entries" head={["#", "Time", "Actor", "Action", "Target", "Result", "Detail"]}>
        {(page.data?.entries ?? []).length === 0 ? <Empty columns={7} text="No entries match." /> : null}
        {(page.data?.entries ?? []).map((e) => (
          <tr key={e.id}>
            <td>{e.id}</td>
            <td>
              <When at={e.time} />
            </td>
            <td>{e.actor}</td>
            <td>{e.action}</td>
            <td>{e.session === null ? e.target : <a href={`/sessions/${e.session}`}>{e.target}</a>}</td>
            <td>{e.result}</td>
            <td>
              <code class="detail">{JSON.stringify(e.detail)}</code>
            </td>
          </tr>
        ))}
      </Table>
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={cursor === ""}
          onClick={() => {
            setTrail(trail.slice(0, -1))
            go({ cursor: trail.at(-1) ?? "" })
          }}
        >
          Newer
        </button>
        <button
          type="button"
          disabled={page.data?.more !== true}
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
